"""The regimen catalogue: drugs, drug classes, eras and the names clinicians write.

Eras follow when regimens entered routine use (approval or guideline adoption, rounded), so a
patient diagnosed in 2004 gets VAD or thalidomide-based induction and one diagnosed in 2021
gets daratumumab-based quadruplets. Class membership drives refractoriness: a patient is
triple-class refractory once refractory to an immunomodulatory drug (IMiD), a proteasome
inhibitor (PI) and an anti-CD38 antibody.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["DRUGS", "REGIMENS", "Drug", "DrugClass", "Regimen", "Setting"]


class DrugClass(StrEnum):
    """Drug classes that define exposure and refractoriness."""

    IMID = "IMiD"
    PI = "PI"
    ANTI_CD38 = "anti-CD38"
    ALKYLATOR = "alkylator"
    STEROID = "steroid"
    ANTHRACYCLINE = "anthracycline"
    VINCA = "vinca alkaloid"
    ANTI_SLAMF7 = "anti-SLAMF7"
    BCMA_ADC = "anti-BCMA ADC"
    CAR_T = "BCMA CAR-T"
    BISPECIFIC = "bispecific antibody"


class Setting(StrEnum):
    """Where in the course a regimen is used."""

    INDUCTION_ELIGIBLE = "induction (transplant-eligible)"
    INDUCTION_INELIGIBLE = "induction (transplant-ineligible)"
    RELAPSE = "relapse"
    LATE_RELAPSE = "late relapse (triple-class exposed)"


@dataclass(frozen=True)
class Drug:
    """One drug; ``names`` are the ways documents write it (generic first)."""

    key: str
    drug_class: DrugClass
    names: tuple[str, ...]


@dataclass(frozen=True)
class Regimen:
    """A regimen: its drugs, its written names (canonical first) and when it was in use."""

    key: str
    names: tuple[str, ...]
    drugs: tuple[str, ...]
    settings: tuple[Setting, ...]
    first_year: int
    last_year: int = 2026
    cycle_days: int = 28
    fixed_cycles: int | None = None  # None: continued until progression or toxicity

    @property
    def name(self) -> str:
        """The canonical name (what gold facts record)."""
        return self.names[0]

    def classes(self) -> frozenset[DrugClass]:
        """Drug classes the regimen contains."""
        return frozenset(DRUGS[d].drug_class for d in self.drugs)


DRUGS: dict[str, Drug] = {
    d.key: d
    for d in (
        Drug("lenalidomide", DrugClass.IMID, ("lenalidomide", "Revlimid", "Len", "R")),
        Drug("thalidomide", DrugClass.IMID, ("thalidomide", "Thalomid", "Thal")),
        Drug("pomalidomide", DrugClass.IMID, ("pomalidomide", "Imnovid", "Pom")),
        Drug("bortezomib", DrugClass.PI, ("bortezomib", "Velcade", "Btz", "V")),
        Drug("carfilzomib", DrugClass.PI, ("carfilzomib", "Kyprolis", "Cfz", "K")),
        Drug("ixazomib", DrugClass.PI, ("ixazomib", "Ninlaro", "Ixa")),
        Drug("daratumumab", DrugClass.ANTI_CD38, ("daratumumab", "Darzalex", "Dara")),
        Drug("isatuximab", DrugClass.ANTI_CD38, ("isatuximab", "Sarclisa", "Isa")),
        Drug("elotuzumab", DrugClass.ANTI_SLAMF7, ("elotuzumab", "Empliciti", "Elo")),
        Drug("dexamethasone", DrugClass.STEROID, ("dexamethasone", "Dex", "d")),
        Drug("prednisone", DrugClass.STEROID, ("prednisone", "P")),
        Drug("melphalan", DrugClass.ALKYLATOR, ("melphalan", "Alkeran", "Mel")),
        Drug("cyclophosphamide", DrugClass.ALKYLATOR, ("cyclophosphamide", "Endoxan", "Cy")),
        Drug("doxorubicin", DrugClass.ANTHRACYCLINE, ("doxorubicin", "Adriamycin")),
        Drug("vincristine", DrugClass.VINCA, ("vincristine", "Oncovin")),
        Drug("belantamab", DrugClass.BCMA_ADC, ("belantamab mafodotin", "Blenrep", "belamaf")),
        Drug("ide-cel", DrugClass.CAR_T, ("idecabtagene vicleucel", "ide-cel", "Abecma")),
        Drug("cilta-cel", DrugClass.CAR_T, ("ciltacabtagene autoleucel", "cilta-cel", "Carvykti")),
        Drug("teclistamab", DrugClass.BISPECIFIC, ("teclistamab", "Tecvayli", "Tec")),
        Drug("elranatamab", DrugClass.BISPECIFIC, ("elranatamab", "Elrexfio")),
        Drug("talquetamab", DrugClass.BISPECIFIC, ("talquetamab", "Talvey", "Tal")),
    )
}

_E, _I, _R, _L = (
    Setting.INDUCTION_ELIGIBLE,
    Setting.INDUCTION_INELIGIBLE,
    Setting.RELAPSE,
    Setting.LATE_RELAPSE,
)

# fmt: off
REGIMENS: dict[str, Regimen] = {
    r.key: r
    for r in (
        # Induction, transplant-eligible
        Regimen("VAD", ("VAD", "vincristine/doxorubicin/dexamethasone"),
                ("vincristine", "doxorubicin", "dexamethasone"), (_E,), 2000, 2007, 28, 4),
        Regimen("TD", ("Thal-Dex", "TD", "thalidomide-dexamethasone"),
                ("thalidomide", "dexamethasone"), (_E, _I, _R), 2003, 2012, 28, 4),
        Regimen("VCD", ("VCD", "CyBorD", "bortezomib/cyclophosphamide/dexamethasone"),
                ("bortezomib", "cyclophosphamide", "dexamethasone"), (_E, _R), 2008, 2026, 21, 4),
        Regimen("VTD", ("VTD", "bortezomib-thalidomide-dexamethasone"),
                ("bortezomib", "thalidomide", "dexamethasone"), (_E,), 2009, 2019, 21, 4),
        Regimen("VRd", ("VRd", "RVD", "bortezomib-lenalidomide-dexamethasone"),
                ("bortezomib", "lenalidomide", "dexamethasone"), (_E, _I), 2012, 2026, 21, 4),
        Regimen("D-VRd", ("Dara-VRd", "D-VRd", "daratumumab-VRd"),
                ("daratumumab", "bortezomib", "lenalidomide", "dexamethasone"), (_E,),
                2020, 2026, 28, 4),
        # Induction, transplant-ineligible
        Regimen("MP", ("MP", "melphalan-prednisone"), ("melphalan", "prednisone"), (_I,),
                2000, 2008, 42, 9),
        Regimen("MPT", ("MPT", "melphalan-prednisone-thalidomide"),
                ("melphalan", "prednisone", "thalidomide"), (_I,), 2007, 2014, 42, 9),
        Regimen("VMP", ("VMP", "bortezomib-melphalan-prednisone"),
                ("bortezomib", "melphalan", "prednisone"), (_I,), 2008, 2018, 42, 9),
        Regimen("Rd", ("Rd", "Len-Dex", "lenalidomide-dexamethasone"),
                ("lenalidomide", "dexamethasone"), (_I, _R), 2008, 2026),
        Regimen("DRd", ("DRd", "Dara-Rd", "daratumumab-lenalidomide-dexamethasone"),
                ("daratumumab", "lenalidomide", "dexamethasone"), (_I, _R), 2017, 2026),
        # Relapse
        Regimen("Dex", ("high-dose dexamethasone", "HD-Dex", "pulsed dexamethasone"),
                ("dexamethasone",), (_R,), 2000, 2008, 28, 4),
        Regimen("Thal", ("thalidomide monotherapy", "Thal mono"), ("thalidomide",), (_R,),
                2000, 2009),
        Regimen("Vd", ("Vd", "bortezomib-dexamethasone"), ("bortezomib", "dexamethasone"),
                (_R,), 2004, 2026, 21),
        Regimen("KRd", ("KRd", "carfilzomib-lenalidomide-dexamethasone"),
                ("carfilzomib", "lenalidomide", "dexamethasone"), (_R,), 2015, 2026),
        Regimen("Kd", ("Kd", "carfilzomib-dexamethasone"), ("carfilzomib", "dexamethasone"),
                (_R,), 2016, 2026),
        Regimen("DVd", ("DVd", "Dara-Vd", "daratumumab-bortezomib-dexamethasone"),
                ("daratumumab", "bortezomib", "dexamethasone"), (_R,), 2016, 2026, 21),
        Regimen("DKd", ("DKd", "Dara-Kd", "daratumumab-carfilzomib-dexamethasone"),
                ("daratumumab", "carfilzomib", "dexamethasone"), (_R,), 2020, 2026),
        Regimen("IRd", ("IRd", "ixazomib-lenalidomide-dexamethasone"),
                ("ixazomib", "lenalidomide", "dexamethasone"), (_R,), 2016, 2026),
        Regimen("EloRd", ("Elo-Rd", "ERd", "elotuzumab-lenalidomide-dexamethasone"),
                ("elotuzumab", "lenalidomide", "dexamethasone"), (_R,), 2016, 2026),
        Regimen("Pd", ("Pom-Dex", "Pd", "pomalidomide-dexamethasone"),
                ("pomalidomide", "dexamethasone"), (_R, _L), 2013, 2026),
        Regimen("Isa-Pd", ("Isa-Pd", "isatuximab-pomalidomide-dexamethasone"),
                ("isatuximab", "pomalidomide", "dexamethasone"), (_R, _L), 2020, 2026),
        Regimen("DPd", ("DPd", "Dara-Pd", "daratumumab-pomalidomide-dexamethasone"),
                ("daratumumab", "pomalidomide", "dexamethasone"), (_R, _L), 2018, 2026),
        # Late relapse (triple-class exposed)
        Regimen("belantamab", ("belantamab mafodotin", "Blenrep", "belamaf"),
                ("belantamab",), (_L,), 2020, 2023, 21),
        Regimen("ide-cel", ("ide-cel", "idecabtagene vicleucel", "Abecma"), ("ide-cel",),
                (_L,), 2021, 2026, 1, 1),
        Regimen("cilta-cel", ("cilta-cel", "ciltacabtagene autoleucel", "Carvykti"),
                ("cilta-cel",), (_L,), 2022, 2026, 1, 1),
        Regimen("teclistamab", ("teclistamab", "Tecvayli"), ("teclistamab",), (_L,),
                2022, 2026, 7),
        Regimen("elranatamab", ("elranatamab", "Elrexfio"), ("elranatamab",), (_L,),
                2023, 2026, 7),
        Regimen("talquetamab", ("talquetamab", "Talvey"), ("talquetamab",), (_L,),
                2023, 2026, 7),
    )
}
# fmt: on
