"""The SQL that maps OMOP CDM tables onto the record store's rows (docs/omop.md).

Each :class:`Step` is one ``SELECT`` over DuckDB's CSV reader (or over the tables of an
attached DuckDB database) producing rows of one store table; the loader runs it as
``INSERT INTO table (...) SELECT ...``. Every column a step reads has its type stated, so a
bad value fails at its row and column instead of being sniffed into text. Concept ids resolve
to names through :data:`CONCEPT_TABLE`, a temporary copy of the export's CONCEPT table (empty
when the export has none: names fall back to ``OMOP:<id>``).
"""

from __future__ import annotations

from collections.abc import Mapping

from recordagent.records.schema import BUNDLE_TABLES
from recordagent.records.sql_steps import Step
from recordagent.sources.csv_errors import TypedRead
from recordagent.sources.omop.files import OmopFiles

__all__ = [
    "CONCEPT_TABLE",
    "INPATIENT_VISIT_CONCEPTS",
    "concept_sql",
    "event_steps",
    "lab_steps",
    "note_sql",
    "patient_step",
    "read_table",
    "typed_reads",
]

CONCEPT_TABLE = "_omop_concept"
"""Temporary table (on the loading connection) holding CONCEPT's used columns."""

# Inpatient Visit, Emergency Room and Inpatient Visit, Inpatient Hospital: admissions.
INPATIENT_VISIT_CONCEPTS = (9201, 262, 8717)

_ID, _TS, _DATE, _TEXT, _NUM = "BIGINT", "TIMESTAMP", "DATE", "VARCHAR", "DOUBLE"

EVENT_COLUMNS = BUNDLE_TABLES["events"].column_names
LAB_COLUMNS = BUNDLE_TABLES["labs"].column_names


def read_table(files: OmopFiles, table: str, types: Mapping[str, str]) -> str:
    """A subquery over one OMOP table, the used columns typed and named lower-case.

    CSV files are read with RFC 4180 quoting; a column the table lacks (CDM 5.3 has no
    ``procedure_end_date``, for one) reads as NULL. Tables of a DuckDB database are cast.
    """
    header = files.columns(table)
    files.used[table] = {**files.used.get(table, {}), **types}
    if files.database is not None:
        columns = ", ".join(
            f'CAST("{header[name]}" AS {kind}) AS {name}'
            if name in header
            else f"CAST(NULL AS {kind}) AS {name}"
            for name, kind in types.items()
        )
        return f"(SELECT {columns} FROM {files.relations[table]})"
    literal = str(files.paths[table]).replace("'", "''")
    present = {header[name]: kind for name, kind in types.items() if name in header}
    typed = ", ".join(f"'{name}': '{kind}'" for name, kind in present.items())
    columns = ", ".join(
        f'"{header[name]}" AS {name}' if name in header else f"CAST(NULL AS {kind}) AS {name}"
        for name, kind in types.items()
    )
    reader = (
        f"read_csv('{literal}', header = true, delim = ',', quote = '\"', escape = '\"', "
        f"all_varchar = true, types = {{{typed}}})"
    )
    return f"(SELECT {columns} FROM {reader})"


def typed_reads(files: OmopFiles) -> list[TypedRead]:
    """Each table read so far, with its typed columns, for tracing a refused value to its row."""
    reads = []
    for table, types in list(files.used.items()):
        header = files.columns(table)
        present = {name: kind for name, kind in types.items() if name in header}
        reads.append(
            TypedRead(
                files.labels[table],
                read_table(files, table, present),
                present,
                {name: header[name] for name in present},
            )
        )
    return reads


def concept_sql(files: OmopFiles) -> str:
    """The SELECT filling :data:`CONCEPT_TABLE` (no rows without a CONCEPT file)."""
    if not files.has("concept"):
        return (
            "SELECT CAST(NULL AS BIGINT) AS concept_id, CAST(NULL AS VARCHAR) AS concept_name, "
            "CAST(NULL AS VARCHAR) AS vocabulary_id, CAST(NULL AS VARCHAR) AS concept_code "
            "WHERE false"
        )
    source = read_table(
        files,
        "concept",
        {"concept_id": _ID, "concept_name": _TEXT, "vocabulary_id": _TEXT, "concept_code": _TEXT},
    )
    return f"SELECT concept_id, concept_name, vocabulary_id, concept_code FROM {source}"


def _join(alias: str, column: str) -> str:
    """A LEFT JOIN resolving ``column`` (a concept id; 0 means none) as ``alias``."""
    return f"LEFT JOIN {CONCEPT_TABLE} {alias} ON {alias}.concept_id = nullif({column}, 0)"


def _code(alias: str, column: str) -> str:
    """'VOCABULARY:code' of a resolved concept, 'OMOP:<id>' otherwise, NULL for none."""
    return (
        f"CASE WHEN {alias}.concept_id IS NOT NULL "
        f"THEN {alias}.vocabulary_id || ':' || {alias}.concept_code "
        f"WHEN coalesce({column}, 0) <> 0 THEN 'OMOP:' || {column} END"
    )


def _when(datetime: str, date: str) -> str:
    return f"coalesce({datetime}, CAST({date} AS TIMESTAMP))"


def patient_step(files: OmopFiles) -> Step:
    """PERSON (+ DEATH) → patients: sex via the gender concept, birth and death dates."""
    person = read_table(
        files,
        "person",
        {
            "person_id": _ID,
            "gender_concept_id": _ID,
            "year_of_birth": _ID,
            "month_of_birth": _ID,
            "day_of_birth": _ID,
            "birth_datetime": _TS,
        },
    )
    if files.has("death"):
        death = read_table(files, "death", {"person_id": _ID, "death_date": _DATE})
        join = (
            f"LEFT JOIN (SELECT person_id, min(death_date) AS death_date FROM {death} "
            "GROUP BY person_id) d ON d.person_id = p.person_id"
        )
        died = "d.death_date"
    else:
        join, died = "", "CAST(NULL AS DATE)"
    sql = f"""
        SELECT CAST(p.person_id AS VARCHAR),
               CASE WHEN p.gender_concept_id = 8532 OR lower(g.concept_name) = 'female'
                    THEN 'female'
                    WHEN p.gender_concept_id = 8507 OR lower(g.concept_name) = 'male'
                    THEN 'male'
                    ELSE 'unknown' END,
               coalesce(CAST(p.birth_datetime AS DATE),
                        make_date(CAST(p.year_of_birth AS INTEGER),
                                  CAST(coalesce(p.month_of_birth, 1) AS INTEGER),
                                  CAST(coalesce(p.day_of_birth, 1) AS INTEGER))),
               {died}
        FROM {person} p
        {_join("g", "p.gender_concept_id")}
        {join}
    """
    return Step("person", "patients", ("patient_id", "sex", "birth_date", "death_date"), sql)


def _visit_detail(column: str) -> str:
    return f"CASE WHEN coalesce({column}, 0) <> 0 THEN 'visit V-' || {column} END"


def event_steps(files: OmopFiles) -> list[Step]:
    """The event inserts for the tables present, in a fixed order."""
    steps: list[Step] = []
    if files.has("visit_occurrence"):
        source = read_table(
            files,
            "visit_occurrence",
            {
                "visit_occurrence_id": _ID,
                "person_id": _ID,
                "visit_concept_id": _ID,
                "visit_start_date": _DATE,
                "visit_start_datetime": _TS,
                "visit_end_date": _DATE,
                "visit_end_datetime": _TS,
                "visit_source_value": _TEXT,
            },
        )
        inpatient = ", ".join(str(c) for c in INPATIENT_VISIT_CONCEPTS)
        steps.append(
            Step(
                "visit_occurrence",
                "events",
                EVENT_COLUMNS,
                f"""
                SELECT 'V-' || v.visit_occurrence_id, CAST(v.person_id AS VARCHAR),
                       {_when("v.visit_start_datetime", "v.visit_start_date")},
                       {_when("v.visit_end_datetime", "v.visit_end_date")},
                       CASE WHEN v.visit_concept_id IN ({inpatient})
                                 OR c.concept_name ILIKE '%inpatient%'
                            THEN 'admission' ELSE 'encounter' END,
                       {_code("c", "v.visit_concept_id")},
                       coalesce(c.concept_name, 'visit'),
                       'visit_occurrence_id ' || v.visit_occurrence_id
                FROM {source} v
                {_join("c", "v.visit_concept_id")}
                WHERE {_when("v.visit_start_datetime", "v.visit_start_date")} IS NOT NULL
                """,
            )
        )
    coded = (
        ("condition_occurrence", "C-", "condition", "diagnosis", "condition"),
        ("drug_exposure", "DE-", "drug", "medication", "drug_exposure"),
        ("procedure_occurrence", "P-", "procedure", "procedure", "procedure"),
    )
    for table, prefix, stem, kind, dates in coded:
        if not files.has(table):
            continue
        start, end = f"{dates}_start", f"{dates}_end"
        if table == "procedure_occurrence":
            start, end = "procedure", "procedure_end"
        types = {
            f"{table}_id": _ID,
            "person_id": _ID,
            f"{stem}_concept_id": _ID,
            f"{start}_date": _DATE,
            f"{start}_datetime": _TS,
            f"{end}_date": _DATE,
            f"{end}_datetime": _TS,
            "visit_occurrence_id": _ID,
            f"{stem}_source_value": _TEXT,
        }
        extra = ""
        if table == "drug_exposure":
            types.update({"sig": _TEXT, "days_supply": _ID, "quantity": _NUM})
            extra = ", 'sig ' || x.sig, 'quantity ' || x.quantity, 'days supply ' || x.days_supply"
        begins = _when(f"x.{start}_datetime", f"x.{start}_date")
        steps.append(
            Step(
                table,
                "events",
                EVENT_COLUMNS,
                f"""
                SELECT '{prefix}' || x.{table}_id, CAST(x.person_id AS VARCHAR), {begins},
                       {_when(f"x.{end}_datetime", f"x.{end}_date")}, '{kind}',
                       {_code("c", f"x.{stem}_concept_id")},
                       coalesce(c.concept_name, x.{stem}_source_value,
                                'OMOP:' || x.{stem}_concept_id),
                       nullif(concat_ws('; ', {_visit_detail("x.visit_occurrence_id")}{extra}),
                              '')
                FROM {read_table(files, table, types)} x
                {_join("c", f"x.{stem}_concept_id")}
                WHERE {begins} IS NOT NULL
                """,
            )
        )
    if files.has("observation"):
        source = read_table(
            files,
            "observation",
            {
                "observation_id": _ID,
                "person_id": _ID,
                "observation_concept_id": _ID,
                "observation_date": _DATE,
                "observation_datetime": _TS,
                "value_as_number": _NUM,
                "value_as_string": _TEXT,
                "value_as_concept_id": _ID,
                "unit_concept_id": _ID,
                "visit_occurrence_id": _ID,
                "observation_source_value": _TEXT,
            },
        )
        begins = _when("o.observation_datetime", "o.observation_date")
        value = (
            "nullif(concat_ws(' ', CAST(o.value_as_number AS VARCHAR), "
            "coalesce(u.concept_code, u.concept_name)), '')"
        )
        steps.append(
            Step(
                "observation",
                "events",
                EVENT_COLUMNS,
                f"""
                SELECT 'O-' || o.observation_id, CAST(o.person_id AS VARCHAR), {begins}, NULL,
                       'other', {_code("c", "o.observation_concept_id")},
                       coalesce(c.concept_name, o.observation_source_value,
                                'OMOP:' || o.observation_concept_id),
                       nullif(concat_ws('; ',
                           CASE WHEN o.value_as_number IS NOT NULL THEN 'value ' || {value}
                           END,
                           'value ' || nullif(o.value_as_string, ''),
                           'value ' || vc.concept_name,
                           {_visit_detail("o.visit_occurrence_id")}), '')
                FROM {source} o
                {_join("c", "o.observation_concept_id")}
                {_join("u", "o.unit_concept_id")}
                {_join("vc", "o.value_as_concept_id")}
                WHERE {begins} IS NOT NULL
                """,
            )
        )
    if files.has("death"):
        death = read_table(
            files,
            "death",
            {
                "person_id": _ID,
                "death_date": _DATE,
                "death_datetime": _TS,
                "cause_concept_id": _ID,
            },
        )
        steps.append(
            Step(
                "death",
                "events",
                EVENT_COLUMNS,
                f"""
                SELECT 'DEATH-' || d.person_id, CAST(d.person_id AS VARCHAR),
                       {_when("d.death_datetime", "d.death_date")}, NULL, 'death',
                       {_code("c", "d.cause_concept_id")}, 'death',
                       'cause: ' || c.concept_name
                FROM (SELECT * FROM {death} QUALIFY row_number() OVER (
                          PARTITION BY person_id ORDER BY death_date) = 1) d
                {_join("c", "d.cause_concept_id")}
                WHERE {_when("d.death_datetime", "d.death_date")} IS NOT NULL
                """,
            )
        )
    return steps


def lab_steps(files: OmopFiles) -> list[Step]:
    """MEASUREMENT → labs, LOINC-coded where the measurement concept is a LOINC concept."""
    if not files.has("measurement"):
        return []
    source = read_table(
        files,
        "measurement",
        {
            "measurement_id": _ID,
            "person_id": _ID,
            "measurement_concept_id": _ID,
            "measurement_date": _DATE,
            "measurement_datetime": _TS,
            "value_as_number": _NUM,
            "operator_concept_id": _ID,
            "value_as_concept_id": _ID,
            "unit_concept_id": _ID,
            "range_low": _NUM,
            "range_high": _NUM,
            "measurement_source_value": _TEXT,
            "unit_source_value": _TEXT,
            "value_source_value": _TEXT,
        },
    )
    begins = _when("m.measurement_datetime", "m.measurement_date")
    return [
        Step(
            "measurement",
            "labs",
            LAB_COLUMNS,
            f"""
            SELECT 'M-' || m.measurement_id, CAST(m.person_id AS VARCHAR), {begins},
                   CASE WHEN c.vocabulary_id = 'LOINC' THEN c.concept_code
                        ELSE 'OMOP:' || m.measurement_concept_id END,
                   coalesce(c.concept_name, m.measurement_source_value,
                            'OMOP:' || m.measurement_concept_id),
                   m.value_as_number,
                   -- A result given as a bound ('<0.3', '>90': its operator concept) keeps the
                   -- bound in the text, so that nothing reads it as a measured value.
                   CASE WHEN m.value_as_number IS NULL
                        THEN coalesce(vc.concept_name, nullif(m.value_source_value, ''))
                        WHEN op.concept_name IN ('<', '<=', '>', '>=')
                        THEN op.concept_name || CAST(m.value_as_number AS VARCHAR) END,
                   coalesce(u.concept_code, nullif(m.unit_source_value, '')),
                   m.range_low, m.range_high, NULL, NULL, NULL, NULL, NULL,
                   -- The source's own code of the test, where it is not the LOINC code itself.
                   nullif(nullif(trim(m.measurement_source_value), ''),
                          CASE WHEN c.vocabulary_id = 'LOINC' THEN c.concept_code END)
            FROM {source} m
            {_join("c", "m.measurement_concept_id")}
            {_join("u", "m.unit_concept_id")}
            {_join("vc", "m.value_as_concept_id")}
            {_join("op", "m.operator_concept_id")}
            WHERE {begins} IS NOT NULL
            """,
        )
    ]


def note_sql(files: OmopFiles) -> str | None:
    """NOTE as documents (document_id, patient_id, date, type, title, text); None without."""
    if not files.has("note"):
        return None
    source = read_table(
        files,
        "note",
        {
            "note_id": _ID,
            "person_id": _ID,
            "note_date": _DATE,
            "note_datetime": _TS,
            "note_type_concept_id": _ID,
            "note_class_concept_id": _ID,
            "note_title": _TEXT,
            "note_text": _TEXT,
        },
    )
    return f"""
        SELECT 'N-' || n.note_id AS document_id, CAST(n.person_id AS VARCHAR) AS patient_id,
               {_when("n.note_datetime", "n.note_date")} AS date,
               lower(coalesce(k.concept_name, t.concept_name, 'note')) AS type,
               coalesce(nullif(n.note_title, ''), k.concept_name, t.concept_name, 'note')
                   AS title,
               n.note_text AS text
        FROM {source} n
        {_join("t", "n.note_type_concept_id")}
        {_join("k", "n.note_class_concept_id")}
        WHERE {_when("n.note_datetime", "n.note_date")} IS NOT NULL
              AND trim(coalesce(n.note_text, '')) <> ''
    """
