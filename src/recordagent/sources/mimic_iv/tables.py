"""The SQL that maps MIMIC-IV tables onto the record store's rows (docs/mimic_iv.md).

Each :class:`Step` is one ``SELECT`` over DuckDB's CSV reader producing rows of one store
table; the loader runs it as ``INSERT INTO table (...) SELECT ...`` so that nothing passes
through Python. Every column a step reads has its type stated: DuckDB's type sniffer samples
the start of a file only, and a code column such as ``icd_code`` that starts with numbers
('4019') and later holds 'V1582' must be text from the first row.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from recordagent.records.schema import BUNDLE_TABLES
from recordagent.records.sql_steps import Step
from recordagent.records.value_rules import MAX_MAGNITUDE
from recordagent.sources.csv_errors import TypedRead
from recordagent.sources.mimic_iv.files import MimicFiles

__all__ = [
    "LOINC_TABLE",
    "event_steps",
    "lab_steps",
    "patient_step",
    "read_csv",
    "read_table",
    "typed_reads",
]

LOINC_TABLE = "_mimic_labitem_loinc"
"""Name under which the loader registers the packaged itemid → LOINC map."""

_ID, _TS, _DATE, _TEXT, _NUM = "BIGINT", "TIMESTAMP", "DATE", "VARCHAR", "DOUBLE"

# Every step selects the store table's columns in the bundle's order; the plain event steps
# leave out the last one, detail.
EVENT_COLUMNS_ALL = BUNDLE_TABLES["events"].column_names
EVENT_COLUMNS = EVENT_COLUMNS_ALL[:-1]
LAB_COLUMNS = BUNDLE_TABLES["labs"].column_names


def read_table(files: MimicFiles, table: str, types: Mapping[str, str]) -> str:
    """A ``read_csv`` call for a MIMIC table's file: RFC 4180 dialect, the used columns typed.

    The typed columns are recorded in ``files.used`` (see :func:`typed_reads`).
    """
    files.used[table] = {**files.used.get(table, {}), **types}
    return read_csv(files.paths[table], types)


def typed_reads(files: MimicFiles) -> list[TypedRead]:
    """Each table read so far: its file's label, a relation reading it, its typed columns."""
    return [
        TypedRead(files.label(table), read_csv(files.paths[table], types), dict(types))
        for table, types in files.used.items()
    ]


def read_csv(path: Path, types: Mapping[str, str]) -> str:
    """A ``read_csv`` call for a MIMIC file: RFC 4180 dialect, the used columns typed."""
    literal = str(path).replace("'", "''")
    typed = ", ".join(f"'{name}': '{kind}'" for name, kind in types.items())
    return (
        f"read_csv('{literal}', header = true, delim = ',', quote = '\"', escape = '\"', "
        f"types = {{{typed}}})"
    )


def patient_step(files: MimicFiles) -> Step:
    """Patients → patients (sex, estimated birth date, death date)."""
    source = read_table(
        files,
        "patients",
        {"subject_id": _ID, "gender": _TEXT, "anchor_age": _ID, "anchor_year": _ID, "dod": _DATE},
    )
    # MIMIC publishes only the age in the (shifted) anchor year: the birth date is an estimate.
    sql = f"""
        SELECT CAST(subject_id AS VARCHAR),
               CASE upper(gender) WHEN 'F' THEN 'female' WHEN 'M' THEN 'male'
                    ELSE 'unknown' END,
               make_date(CAST(anchor_year - anchor_age AS INTEGER), 1, 1),
               dod
        FROM {source}
    """
    return Step("patients", "patients", ("patient_id", "sex", "birth_date", "death_date"), sql)


def event_steps(files: MimicFiles) -> list[Step]:
    """The event inserts for the tables present, in a fixed order."""
    steps: list[Step] = []
    admissions = (
        read_table(
            files,
            "admissions",
            {
                "subject_id": _ID,
                "hadm_id": _ID,
                "admittime": _TS,
                "dischtime": _TS,
                "admission_type": _TEXT,
                "admission_location": _TEXT,
                "discharge_location": _TEXT,
                "hospital_expire_flag": _ID,
            },
        )
        if files.has("admissions")
        else None
    )
    if admissions is not None:
        steps.append(
            Step(
                "admissions",
                "events",
                EVENT_COLUMNS_ALL,
                f"""
                SELECT 'ADM-' || hadm_id, CAST(subject_id AS VARCHAR), admittime, dischtime,
                       'admission', CAST(hadm_id AS VARCHAR),
                       coalesce(admission_type, 'unknown') || ' admission',
                       nullif(concat_ws('; ', 'from ' || admission_location,
                                        'to ' || discharge_location,
                                        CASE WHEN hospital_expire_flag = 1
                                             THEN 'died in hospital' END), '')
                FROM {admissions}
                """,
            )
        )
    if files.has("transfers"):
        source = read_table(
            files,
            "transfers",
            {
                "subject_id": _ID,
                "hadm_id": _ID,
                "transfer_id": _ID,
                "eventtype": _TEXT,
                "careunit": _TEXT,
                "intime": _TS,
                "outtime": _TS,
            },
        )
        steps.append(
            Step(
                "transfers",
                "events",
                EVENT_COLUMNS,
                f"""
                SELECT 'TRF-' || transfer_id, CAST(subject_id AS VARCHAR), intime, outtime,
                       'encounter', CAST(hadm_id AS VARCHAR),
                       coalesce(eventtype, 'transfer') || ': ' || coalesce(careunit, 'unknown')
                FROM {source}
                """,
            )
        )
    if files.has("services"):
        source = read_table(
            files,
            "services",
            {
                "subject_id": _ID,
                "hadm_id": _ID,
                "transfertime": _TS,
                "prev_service": _TEXT,
                "curr_service": _TEXT,
            },
        )
        steps.append(
            Step(
                "services",
                "events",
                EVENT_COLUMNS_ALL,
                f"""
                SELECT 'SRV-' || hadm_id || '-'
                           || row_number() OVER (PARTITION BY hadm_id
                                                 ORDER BY transfertime, curr_service),
                       CAST(subject_id AS VARCHAR), transfertime, NULL, 'encounter',
                       CAST(hadm_id AS VARCHAR), 'service ' || curr_service,
                       'from ' || prev_service
                FROM {source}
                """,
            )
        )
    if files.has("diagnoses_icd") and admissions is not None:
        steps.append(_coded_step(files, "diagnoses_icd", "d_icd_diagnoses", admissions))
    if files.has("procedures_icd"):
        steps.append(_coded_step(files, "procedures_icd", "d_icd_procedures", admissions))
    if files.has("prescriptions"):
        steps.append(_prescription_step(files))
    if files.has("emar"):
        source = read_table(
            files,
            "emar",
            {
                "subject_id": _ID,
                "hadm_id": _ID,
                "emar_id": _TEXT,
                "charttime": _TS,
                "medication": _TEXT,
                "event_txt": _TEXT,
            },
        )
        steps.append(
            Step(
                "emar",
                "events",
                EVENT_COLUMNS_ALL,
                f"""
                SELECT 'MAR-' || emar_id, CAST(subject_id AS VARCHAR), charttime, NULL,
                       'medication', NULL,
                       coalesce(medication, 'medication') || ': '
                           || coalesce(event_txt, 'charted'),
                       'hadm_id ' || hadm_id
                FROM {source}
                WHERE charttime IS NOT NULL
                """,
            )
        )
    if files.has("icustays"):
        source = read_table(
            files,
            "icustays",
            {
                "subject_id": _ID,
                "hadm_id": _ID,
                "stay_id": _ID,
                "first_careunit": _TEXT,
                "intime": _TS,
                "outtime": _TS,
                "los": _NUM,
            },
        )
        steps.append(
            Step(
                "icustays",
                "events",
                EVENT_COLUMNS_ALL,
                f"""
                SELECT 'ICU-' || stay_id, CAST(subject_id AS VARCHAR), intime, outtime,
                       'encounter', CAST(hadm_id AS VARCHAR),
                       'ICU stay: ' || coalesce(first_careunit, 'unknown unit'),
                       'los ' || round(los, 2) || ' days'
                FROM {source}
                WHERE intime IS NOT NULL
                """,
            )
        )
    patients = read_table(files, "patients", {"subject_id": _ID, "dod": _DATE})
    steps.append(
        Step(
            "patients",
            "events",
            EVENT_COLUMNS,
            f"""
            SELECT 'DEATH-' || subject_id, CAST(subject_id AS VARCHAR), CAST(dod AS TIMESTAMP),
                   NULL, 'death', NULL, 'death'
            FROM {patients}
            WHERE dod IS NOT NULL
            """,
        )
    )
    return steps


def _coded_step(files: MimicFiles, coded: str, dictionary: str, admissions: str | None) -> Step:
    """diagnoses_icd / procedures_icd joined to their ICD-9 and ICD-10 dictionaries."""
    is_diagnosis = coded == "diagnoses_icd"
    types = {
        "subject_id": _ID,
        "hadm_id": _ID,
        "seq_num": _ID,
        "icd_code": _TEXT,
        "icd_version": _ID,
    }
    if not is_diagnosis:
        types["chartdate"] = _DATE
    source = read_table(files, coded, types)
    titles = (
        f"LEFT JOIN {read_table(files, dictionary, {'icd_code': _TEXT, 'icd_version': _ID, 'long_title': _TEXT})} t "  # noqa: E501
        "ON t.icd_code = c.icd_code AND t.icd_version = c.icd_version"
        if files.has(dictionary)
        else ""
    )
    title = "t.long_title" if files.has(dictionary) else "NULL"
    code = "'ICD' || c.icd_version || ':' || c.icd_code"
    if is_diagnosis:
        # Diagnoses are coded per admission (at discharge): dated by the admission.
        return Step(
            coded,
            "events",
            EVENT_COLUMNS_ALL,
            f"""
            SELECT 'DX-' || c.hadm_id || '-' || c.seq_num, CAST(c.subject_id AS VARCHAR),
                   a.admittime, a.dischtime, 'diagnosis', {code},
                   coalesce({title}, {code}),
                   'hadm_id ' || c.hadm_id || '; sequence ' || c.seq_num
            FROM {source} c
            JOIN {admissions} a ON a.hadm_id = c.hadm_id
            {titles}
            """,
        )
    return Step(
        coded,
        "events",
        EVENT_COLUMNS_ALL,
        f"""
        SELECT 'PX-' || c.hadm_id || '-' || c.seq_num, CAST(c.subject_id AS VARCHAR),
               CAST(c.chartdate AS TIMESTAMP), NULL, 'procedure', {code},
               coalesce({title}, {code}), 'hadm_id ' || c.hadm_id
        FROM {source} c
        {titles}
        WHERE c.chartdate IS NOT NULL
        """,
    )


def _prescription_step(files: MimicFiles) -> Step:
    """prescriptions, with frequency and status from the pharmacy order they belong to."""
    source = read_table(
        files,
        "prescriptions",
        {
            "subject_id": _ID,
            "hadm_id": _ID,
            "pharmacy_id": _ID,
            "starttime": _TS,
            "stoptime": _TS,
            "drug": _TEXT,
            "ndc": _TEXT,
            "dose_val_rx": _TEXT,
            "dose_unit_rx": _TEXT,
            "route": _TEXT,
        },
    )
    if files.has("pharmacy"):
        pharmacy = read_table(
            files,
            "pharmacy",
            {"pharmacy_id": _ID, "frequency": _TEXT, "status": _TEXT, "entertime": _TS},
        )
        join = f"LEFT JOIN {pharmacy} ph ON ph.pharmacy_id = r.pharmacy_id"
        frequency, entered = "ph.frequency", "ph.entertime"
    else:
        join, frequency, entered = "", "NULL", "NULL"
    return Step(
        "prescriptions",
        "events",
        EVENT_COLUMNS_ALL,
        f"""
        SELECT 'RX-' || coalesce(CAST(r.pharmacy_id AS VARCHAR), 'none') || '-'
                   || row_number() OVER (PARTITION BY r.subject_id, r.pharmacy_id
                                         ORDER BY r.drug, r.starttime, r.dose_val_rx, r.route),
               CAST(r.subject_id AS VARCHAR), coalesce(r.starttime, {entered}), r.stoptime,
               'medication', nullif(nullif(r.ndc, '0'), ''), coalesce(r.drug, 'unnamed drug'),
               nullif(concat_ws('; ',
                   nullif(trim(concat_ws(' ', r.dose_val_rx, r.dose_unit_rx, r.route)), ''),
                   {frequency}, 'hadm_id ' || r.hadm_id), '')
        FROM {source} r
        {join}
        WHERE coalesce(r.starttime, {entered}) IS NOT NULL
        """,
    )


def lab_steps(files: MimicFiles) -> list[Step]:
    """The lab inserts for the tables present: labevents, microbiology, OMR."""
    steps: list[Step] = []
    if files.has("labevents"):
        source = read_table(
            files,
            "labevents",
            {
                "labevent_id": _ID,
                "subject_id": _ID,
                "itemid": _ID,
                "charttime": _TS,
                "value": _TEXT,
                "valuenum": _NUM,
                "valueuom": _TEXT,
                "ref_range_lower": _NUM,
                "ref_range_upper": _NUM,
                "flag": _TEXT,
                "priority": _TEXT,
                "comments": _TEXT,
            },
        )
        if files.has("d_labitems"):
            items = read_table(
                files,
                "d_labitems",
                {"itemid": _ID, "label": _TEXT, "fluid": _TEXT, "category": _TEXT},
            )
            join = f"LEFT JOIN {items} d ON d.itemid = l.itemid"
            label, fluid, category = "d.label", "d.fluid", "d.category"
        else:
            join, label, fluid, category = "", "NULL", "NULL", "NULL"
        # Blood analytes keep MIMIC's label; other fluids say which ('Creatinine (Urine)'),
        # so that a urine value never mixes into the serum series of the same name.
        name = (
            f"CASE WHEN {fluid} IS NULL OR {fluid} = 'Blood' "
            f"THEN coalesce({label}, 'item ' || l.itemid) "
            f"ELSE coalesce({label}, 'item ' || l.itemid) || ' (' || {fluid} || ')' END"
        )
        steps.append(
            Step(
                "labevents",
                "labs",
                LAB_COLUMNS,
                f"""
                SELECT 'LAB-' || l.labevent_id, CAST(l.subject_id AS VARCHAR), l.charttime,
                       coalesce(m.loinc, 'MIMIC:' || l.itemid), {name},
                       l.valuenum,
                       -- Many text results are written in the comment ('NEGATIVE.', and
                       -- behind a de-identified value '___'): the comment is the result then.
                       CASE WHEN l.valuenum IS NULL THEN
                           CASE WHEN l.value IS NULL OR l.value = '___'
                                THEN coalesce(l.comments, l.value) ELSE l.value END
                       END,
                       l.valueuom,
                       l.ref_range_lower, l.ref_range_upper, l.flag, {fluid}, {category},
                       l.priority, l.comments,
                       -- An item mapped to LOINC keeps its itemid as the local code.
                       CASE WHEN m.loinc IS NOT NULL THEN 'MIMIC:' || l.itemid END
                FROM {source} l
                {join}
                LEFT JOIN {LOINC_TABLE} m ON m.itemid = l.itemid
                """,
            )
        )
    if files.has("microbiologyevents"):
        source = read_table(
            files,
            "microbiologyevents",
            {
                "microevent_id": _ID,
                "subject_id": _ID,
                "chartdate": _TS,
                "charttime": _TS,
                "spec_type_desc": _TEXT,
                "test_itemid": _ID,
                "test_name": _TEXT,
                "org_name": _TEXT,
                "ab_name": _TEXT,
                "dilution_text": _TEXT,
                "interpretation": _TEXT,
                "comments": _TEXT,
            },
        )
        steps.append(
            Step(
                "microbiologyevents",
                "labs",
                LAB_COLUMNS,
                f"""
                SELECT 'MICRO-' || microevent_id, CAST(subject_id AS VARCHAR),
                       coalesce(charttime, chartdate), 'MIMIC-MICRO:' || test_itemid,
                       coalesce(test_name, 'microbiology test'), NULL,
                       nullif(concat_ws('; ', org_name,
                                        CASE WHEN ab_name IS NOT NULL THEN
                                            ab_name || ' ' || coalesce(interpretation, '?')
                                            || coalesce(' (MIC ' || dilution_text || ')', '')
                                        END), ''),
                       NULL, NULL, NULL, NULL, spec_type_desc, 'Microbiology', NULL, comments,
                       NULL
                FROM {source}
                WHERE coalesce(charttime, chartdate) IS NOT NULL
                """,
            )
        )
    if files.has("omr"):
        source = read_table(
            files,
            "omr",
            {
                "subject_id": _ID,
                "chartdate": _DATE,
                "seq_num": _ID,
                "result_name": _TEXT,
                "result_value": _TEXT,
            },
        )
        # OMR results are text; one that reads as a number is one, unless no measurement could
        # be that number ('NaN', 'Infinity', 1e300): then it stays text, as written.
        number = "TRY_CAST(result_value AS DOUBLE)"
        measured = f"coalesce(isfinite({number}) AND abs({number}) <= {MAX_MAGNITUDE!r}, false)"
        unit = """CASE
                    WHEN result_name ILIKE 'Weight (Lbs)%' THEN 'lb'
                    WHEN result_name ILIKE 'Height (Inches)%' THEN 'in'
                    WHEN result_name ILIKE 'BMI%' THEN 'kg/m2'
                    WHEN result_name ILIKE 'Blood Pressure%' THEN 'mmHg'
                    WHEN result_name ILIKE 'eGFR%' THEN 'mL/min/1.73m2'
                  END"""
        steps.append(
            Step(
                "omr",
                "labs",
                LAB_COLUMNS,
                f"""
                SELECT 'OMR-' || subject_id || '-'
                           || row_number() OVER (PARTITION BY subject_id
                                                 ORDER BY chartdate, seq_num, result_name,
                                                          result_value),
                       CAST(subject_id AS VARCHAR), CAST(chartdate AS TIMESTAMP),
                       'OMR:' || result_name, result_name,
                       CASE WHEN {measured} THEN TRY_CAST(result_value AS DOUBLE) END,
                       CASE WHEN {measured} THEN NULL ELSE result_value END,
                       {unit}, NULL, NULL, NULL, NULL, 'OMR', NULL, NULL, NULL
                FROM {source}
                WHERE chartdate IS NOT NULL AND result_name IS NOT NULL
                """,
            )
        )
    return steps
