"""What one ingest did: :class:`IngestReport` (counts, rejects file, ignored columns, notices)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["RowError", "IngestReport", "MAX_LISTED_ERRORS"]

MAX_LISTED_ERRORS = 200        # RowErrors kept on the report for display; the rejects file has all


@dataclass(frozen=True)
class RowError:
    """One problem in one row: ``row`` is the 1-based data record number (header not counted)."""

    file: str
    row: int
    column: str
    reason: str


@dataclass
class IngestReport:
    """What one :func:`~miner.ingest.ingest_file` call read, kept, rejected and merged.

    Always ``rows_read == rows_accepted + rows_rejected + duplicates_resolved``.
    """

    file: str
    table: str
    rows_read: int = 0
    rows_accepted: int = 0
    rows_rejected: int = 0
    duplicates_resolved: int = 0
    rejects_path: Path | None = None
    errors: list[RowError] = field(default_factory=list)   # first MAX_LISTED_ERRORS problems
    mode: str = "upsert"
    encoding: str | None = None          # text files: the encoding that decoded the file
    ignored_columns: list[str] = field(default_factory=list)   # file columns not in the schema
    suggestions: dict[str, str] = field(default_factory=dict)  # ignored column → schema column it may mean
    table_rows: int = 0                  # rows in the stored table after this ingest
    preset: str | None = None            # column-mapping preset applied ('mediacrawler_xhs', ...)
    renamed: dict[str, str] = field(default_factory=dict)      # file column → schema column
    defaulted: list[str] = field(default_factory=list)         # schema columns absent, filled with defaults
    notices: list[str] = field(default_factory=list)           # things the user should know (Chinese + English)
    sheets: dict[str, int] = field(default_factory=dict)       # Excel: rows read per sheet used
    control_chars_removed: int = 0       # control characters / ANSI escape sequences stripped
    control_cells: int = 0               # cells they were stripped from
    capped_rows: int = 0                 # accepted rows with a capped count ('10w+' → 100000, capped)
    generated_ids: int = 0               # accepted rows whose id is a hash of their text
    ragged_lines: int = 0                # CSV lines with the wrong number of fields (in rows_rejected)

    def summary(self) -> str:
        """One line of counts, then one line per notice, ignored column and cleanup."""
        line = (
            f"{Path(self.file).name} → {self.table}: 读取 {self.rows_read} 行 read, "
            f"接受 {self.rows_accepted} accepted, 拒绝 {self.rows_rejected} rejected, "
            f"重复合并 {self.duplicates_resolved} duplicates resolved; "
            f"表内共 {self.table_rows} rows in table ({self.mode})"
        )
        if self.rejects_path is not None:
            line += f"; 拒绝明细 rejects: {self.rejects_path}"
        lines = [line]
        if self.preset:
            lines.append(f"  列映射预设 preset: {self.preset}")
        if self.renamed:
            lines.append("  列已映射 renamed: " + ", ".join(f"{a} → {b}" for a, b in self.renamed.items()))
        if self.sheets:
            lines.append("  工作表 sheets: " + ", ".join(f"{s} ({n} 行 rows)" for s, n in self.sheets.items()))
        if self.ignored_columns:
            shown = [f"{c} (是否想用 did you mean '{self.suggestions[c]}'?)" if c in self.suggestions else c
                     for c in self.ignored_columns]
            lines.append("  已忽略的列 ignored columns: " + ", ".join(shown))
        if self.ragged_lines:
            lines.append(f"  列数不符的行 ragged CSV lines: {self.ragged_lines} (in rejects, with line numbers)")
        if self.control_chars_removed:
            lines.append(f"  已清除控制字符 control characters removed: {self.control_chars_removed} "
                         f"in {self.control_cells} cells")
        if self.capped_rows:
            lines.append(f"  封顶计数 capped counts ('10w+'): {self.capped_rows} rows stored at the floor, "
                         "flagged counts_capped")
        lines.extend(f"  注意 notice: {n}" for n in self.notices)
        return "\n".join(lines)
