"""Expert labelling of a team's own items: export a workbook, import the filled sheets.

:func:`export_labelling` writes a folder for the annotators: one CSV sheet per annotator (one
row per item, in the same order everywhere, optionally shuffled by a seed), one self-contained
HTML view per item (question, answer format, record excerpts with their ids:
:mod:`.labelling_excerpts`, :mod:`.labelling_html`), ``index.html`` and ``README.md``. Labelling
is blind: no sheet or view shows a reference value or another annotator's label; given
reference labels, the rows a reference cites are among the excerpts, unmarked.

:func:`import_labelling` reads the filled sheets (:mod:`.labelling_sheets`, values by
:mod:`.labelling_values`), checks every row, merges them into one labels file (one row per
item × annotator, the file ``recordagent eval`` reads), measures agreement
(:mod:`.labelling_agreement`) and writes an adjudication sheet of the items the annotators
disagree on. Given the filled adjudication sheet, its values are added as adjudicated labels
(annotator ``adjudicator``), which settle those items' references.

Nothing is half-written: the workbook is built in a temporary folder moved into place at the
end, and each imported file is written to a temporary name and renamed; an import whose
output is one of the files it reads is refused before anything is written.
"""

from recordagent.evaluation.labelling_export import LabellingExport, export_labelling
from recordagent.evaluation.labelling_import import (
    AnnotatorCounts,
    LabellingImport,
    import_labelling,
)

__all__ = [
    "AnnotatorCounts",
    "LabellingExport",
    "LabellingImport",
    "export_labelling",
    "import_labelling",
]
