"""Cell parsers: raw column → typed values, a mask of empty cells and the problems found.

Each parser takes one raw column and returns ``(values, missing, problems)``: ``missing`` is a
numpy bool mask of empty cells and ``problems`` a list of ``(mask, reason)`` where reason is one
string or an array with one reason per masked row. String work runs in Arrow compute kernels (RE2
regexes), so a chunk of 500,000 rows is parsed without a Python loop (tags excepted).

Counts as platforms display them (:func:`parse_number`): ``3,456``, ``1.2万``/``1.2w`` (×10⁴),
``1.2k``/``1.2千`` (×10³), ``1.2亿`` (×10⁸), full-width ``１２３``; a trailing ``+`` (``10w+``,
``10万+``, ``999+``) marks a capped display: the value is stored at its floor (``10w+`` → 100000)
and the row's cap mask is set (the notes table keeps it as ``counts_capped``).
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from miner.schema import Column
from miner.schema import split_tags as schema_split_tags

MAX_TEXT_CHARS = 100_000       # longest accepted title/body (characters)
MAX_STR_CHARS = 1_000          # longest accepted id/label value
DATE_MIN, DATE_MAX = pd.Timestamp("2000-01-01", tz="UTC"), pd.Timestamp("2100-01-01", tz="UTC")

_TRUE = {"true", "t", "yes", "y", "1", "1.0", "是", "真"}
_FALSE = {"false", "f", "no", "n", "0", "0.0", "否", "假"}
_STRIP = " \t\r\n\f\v\xa0\u3000\u200b\ufeff"   # whitespace, NBSP, ideographic space, ZWSP, BOM
_DATE_HINT = "expected ISO 8601, 'YYYY-MM-DD HH:MM[:SS]' or unix seconds"

# Terminal escape sequences (CSI like ESC[31m, OSC like ESC]0;title BEL, two-byte ESC x), then any
# other C0/C1 control character except newline and tab.
_ANSI = r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]?"
_CONTROL = r"[\x00-\x08\x0b-\x1f\x7f\x{80}-\x{9f}]"
_CONTROL_PY = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]?"
                         r"|[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_COUNT = r"^(?P<sign>[-+]?)(?P<num>\d+(?:\.\d*)?|\.\d+)(?P<unit>[万wW千kK亿]?)(?P<cap>\+?)$"
_UNITS = {"": 1, "万": 10_000, "w": 10_000, "W": 10_000, "千": 1_000, "k": 1_000, "K": 1_000,
          "亿": 100_000_000}


# ---- arrow helpers -------------------------------------------------------------------------------
def np_bool(arr) -> np.ndarray:
    return np.asarray(pc.fill_null(arr, False).to_numpy(zero_copy_only=False), dtype=bool)


def np_int(arr) -> np.ndarray:
    return np.asarray(pc.fill_null(arr, 0).to_numpy(zero_copy_only=False), dtype=np.int64)


def _string_array(s: pd.Series) -> pa.Array:
    if isinstance(s.dtype, pd.ArrowDtype) and s.dtype.pyarrow_dtype in (pa.string(), pa.large_string()):
        arr = pa.array(s).cast(pa.string())
    else:
        missing = s.isna().to_numpy()
        if s.dtype == object and pd.api.types.infer_dtype(s, skipna=True) in ("string", "empty"):
            values = s
        else:   # typed (Parquet ints/dates) or mixed objects (JSON lists in a text column)
            values = s.astype(object).where(missing, s.astype(str))
        arr = pa.array(values, type=pa.string(), from_pandas=True)
    return arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr


def as_text(s: pd.Series) -> tuple[pa.Array, np.ndarray]:
    """Trimmed strings as an Arrow array, empty → null. Returns (array, missing mask)."""
    arr = pc.utf8_trim(_string_array(s), characters=_STRIP)
    missing = np_bool(pc.or_kleene(pc.is_null(arr), pc.equal(arr, "")))
    if missing.any():
        arr = pc.if_else(pa.array(missing), pa.scalar(None, pa.string()), arr)
    return arr, missing


def series(arr: pa.Array, index: pd.Index) -> pd.Series:
    return pd.Series(pd.arrays.ArrowExtensionArray(arr), index=index)


def strip_controls(s: pd.Series) -> tuple[pd.Series, int, int]:
    """Remove ANSI escape sequences and C0/C1 control characters (not ``\\n``/``\\t``) from a string column.

    Returns (cleaned column, characters removed, cells changed). Non-string cells (JSON lists,
    Parquet numbers) are returned unchanged.
    """
    if not (s.dtype == object or isinstance(s.dtype, pd.ArrowDtype) or pd.api.types.is_string_dtype(s)):
        return s, 0, 0
    if s.dtype == object and pd.api.types.infer_dtype(s, skipna=True) not in ("string", "empty"):
        return s, 0, 0
    arr = _string_array(s)
    if not np_bool(pc.match_substring_regex(arr, _CONTROL)).any():   # one pass for the usual clean column
        return s, 0, 0
    cleaned = pc.replace_substring_regex(pc.replace_substring_regex(arr, _ANSI, ""), _CONTROL, "")
    removed = np_int(pc.subtract(pc.utf8_length(arr), pc.utf8_length(cleaned)))
    cells = int((removed > 0).sum())
    if not cells:
        return s, 0, 0
    return series(cleaned, s.index), int(removed.sum()), cells


def strip_controls_text(text: str) -> str:
    """:func:`strip_controls` for one Python string (tags, column names)."""
    return _CONTROL_PY.sub("", text)


def quote(values, mask: np.ndarray) -> np.ndarray:
    """``'value'`` (cut at 40 characters) for each masked row, for reasons."""
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        picked = values.filter(pa.array(mask)).to_pylist()
    else:
        picked = list(np.asarray(values.astype(object))[mask])
    return np.array([f"'{str(v)[:40]}{'…' if len(str(v)) > 40 else ''}'" for v in picked], dtype=object)


# ---- parsers -------------------------------------------------------------------------------------
def parse_str(s: pd.Series, col: Column, hashed: bool) -> tuple[pd.Series, np.ndarray, list]:
    arr, missing = as_text(s)
    problems = []
    long = np_int(pc.utf8_length(arr)) > MAX_STR_CHARS
    if long.any():
        problems.append((long, f"value longer than {MAX_STR_CHARS} characters (值过长)"))
    if col.allowed is not None:
        bad = ~missing & ~np_bool(pc.is_in(arr, value_set=pa.array(col.allowed, pa.string())))
        if bad.any():
            reason = f"not one of {'/'.join(col.allowed)} (不在允许值内)"
            problems.append((bad, reason if hashed else quote(arr, bad) + " " + reason))
    return series(arr, s.index), missing, problems


def parse_text(s: pd.Series, col: Column) -> tuple[pd.Series, np.ndarray, list]:
    arr, missing = as_text(s)
    lengths = np_int(pc.utf8_length(arr))
    long = lengths > MAX_TEXT_CHARS
    problems = []
    if long.any():
        reasons = np.array([f"text too long (文本过长): {n} characters > limit {MAX_TEXT_CHARS}"
                            for n in lengths[long]], dtype=object)
        problems.append((long, reasons))
    return series(arr, s.index), missing, problems


def _display_numbers(shown: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Platform display strings → (float value, capped mask); NaN where not a number."""
    text = pc.utf8_normalize(pc.fill_null(shown, ""), form="NFKC")       # １２３ → 123, ＋ → +
    text = pc.replace_substring_regex(text, r"[,_\s¥$]", "")             # NFKC made ￥ → ¥, ， → ,
    parts = pc.extract_regex(text, _COUNT)
    matched = np_bool(pc.is_valid(parts))
    number = np.full(len(text), np.nan)
    capped = np.zeros(len(text), dtype=bool)
    if matched.any():
        fields = parts.filter(pa.array(matched))
        sign = np.where(np_bool(pc.equal(pc.struct_field(fields, "sign"), "-")), -1.0, 1.0)
        value = pc.cast(pc.struct_field(fields, "num"), pa.float64()).to_numpy(zero_copy_only=False)
        unit = pc.index_in(pc.struct_field(fields, "unit"), value_set=pa.array(list(_UNITS)))
        scale = np.array(list(_UNITS.values()), dtype=float)[np_int(unit)]
        scaled = sign * value * scale
        number[matched] = np.where(scale > 1, np.round(scaled), scaled)   # 1.25万 → 12500 exactly
        capped[matched] = np_bool(pc.equal(pc.struct_field(fields, "cap"), "+"))
    rest = ~matched & np_bool(pc.not_equal(text, ""))
    if rest.any():                                                        # '1e3', 'inf' as before
        number[rest] = pd.to_numeric(np.asarray(text.filter(pa.array(rest)).to_pylist(), dtype=object),
                                     errors="coerce").astype(float)
    return number, capped


def parse_number(
    s: pd.Series, col: Column, integer: bool, allow_capped: bool = False
) -> tuple[pd.Series, np.ndarray, list, np.ndarray]:
    """Numbers and display counts (see the module docstring). Returns (values, missing, problems, capped).

    ``allow_capped``: a trailing ``+`` is accepted (stored at the floor, ``capped`` set); otherwise
    such values are rejected as approximate.
    """
    problems = []
    capped = np.zeros(len(s), dtype=bool)
    if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
        number = s.astype(float).to_numpy()
        missing = np.isnan(number)
        shown = s
    else:
        shown, missing = as_text(s)
        number, capped = _display_numbers(shown)
        capped &= ~missing
    approx = capped if not allow_capped else np.zeros(len(s), dtype=bool)
    if approx.any():
        problems.append((approx, quote(shown, approx) + " is approximate (capped '+' value, 约数); "
                         "this table needs an exact number"))
    with np.errstate(invalid="ignore"):
        invalid = ~missing & ~approx & ~np.isfinite(number)
        if integer:
            invalid |= ~missing & ~approx & np.isfinite(number) & ((number != np.floor(number)) | (np.abs(number) > 2**53))
    if invalid.any():
        kind = "an integer (非整数)" if integer else "a number (非数值)"
        problems.append((invalid, quote(shown, invalid) + f" is not {kind}"))
    if col.min_value is not None:
        with np.errstate(invalid="ignore"):
            low = ~missing & ~invalid & ~approx & (number < col.min_value)
        if low.any():
            label = "negative value (负数)" if col.min_value == 0 else f"value below the minimum {col.min_value:g}"
            problems.append((low, quote(shown, low) + f" is a {label}; must be ≥ {col.min_value:g}"))
    usable = ~missing & ~invalid & ~approx
    if integer:
        out = pd.array(np.where(usable, number, 0).astype(np.int64), dtype="Int64")
    else:
        out = pd.array(np.where(usable, number, np.nan), dtype="Float64")
    out[~usable] = pd.NA
    return pd.Series(out, index=s.index), missing, problems, capped & usable


def _epoch_ns(seconds: np.ndarray) -> np.ndarray:
    """Unix seconds (or milliseconds when ≥ 1e11, i.e. 13 digits) → UTC int64 ns; NaT outside 1973–2103."""
    seconds = np.where(seconds >= 1e11, seconds / 1000.0, seconds)
    ok = (seconds >= 1e8) & (seconds <= 4.2e9)
    ns = np.full(len(seconds), np.datetime64("NaT", "ns").astype(np.int64))
    ns[ok] = np.round(seconds[ok] * 1e9).astype(np.int64)
    return ns


def _iso_ns(text: np.ndarray, aware: np.ndarray, tz: str) -> np.ndarray:
    """ISO 8601 strings → UTC int64 ns; ``aware`` rows carry an offset, the rest are ``tz`` local time."""
    out = np.full(len(text), np.datetime64("NaT", "ns").astype(np.int64))
    if aware.any():
        parsed = pd.DatetimeIndex(pd.to_datetime(text[aware], format="ISO8601", errors="coerce", utc=True))
        out[aware] = parsed.as_unit("ns").asi8
    if (~aware).any():
        parsed = pd.DatetimeIndex(pd.to_datetime(text[~aware], format="ISO8601", errors="coerce"))
        local = parsed.tz_localize(tz, ambiguous="NaT", nonexistent="NaT")
        out[~aware] = local.as_unit("ns").asi8
    return out


def parse_datetime(s: pd.Series, tz: str) -> tuple[pd.Series, np.ndarray, list]:
    """Datetimes → tz-aware in ``tz``; naive values are taken as ``tz`` local time.

    Text may be ISO 8601 (``2023-09-01``, ``2023-09-01 10:00[:00]``, ``2023-09-01T10:00:00+08:00``,
    ``...Z``), ``2023/9/1 10:00``, ``2023年9月1日``, or unix seconds (9–13 digits; 13 = milliseconds).
    """
    nat = np.datetime64("NaT", "ns").astype(np.int64)
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        utc_ns = pd.DatetimeIndex(s).tz_convert("UTC").as_unit("ns").asi8
        missing, shown = s.isna().to_numpy(), s
    elif pd.api.types.is_datetime64_dtype(s):
        utc_ns = pd.DatetimeIndex(s).tz_localize(tz, ambiguous="NaT", nonexistent="NaT").as_unit("ns").asi8
        missing, shown = s.isna().to_numpy(), s
    elif pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
        seconds = s.astype(float).to_numpy()
        missing, shown = np.isnan(seconds), s
        utc_ns = _epoch_ns(np.nan_to_num(seconds, nan=0.0))
    else:
        shown, missing = as_text(s)
        utc_ns = np.full(len(s), nat)
        present = np.flatnonzero(~missing)
        text = shown.filter(pa.array(~missing))
        lengths = np_int(pc.utf8_length(text))
        epoch = np_bool(pc.utf8_is_digit(text)) & (lengths >= 9) & (lengths <= 13)
        if epoch.any():
            seconds = pc.cast(text.filter(pa.array(epoch)), pa.float64()).to_numpy(zero_copy_only=False)
            utc_ns[present[epoch]] = _epoch_ns(seconds)
        rest = text.filter(pa.array(~epoch))
        if len(rest):
            if not np_bool(pc.equal(pc.utf8_slice_codeunits(rest, 4, 5), "-")).all():
                rest = pc.replace_substring_regex(   # 2023/9/1, 2023.9.1, 2023年9月1日 → 2023-9-1
                    rest, r"^(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?", r"\1-\2-\3")
            # An offset (Z, +08:00, -0500) can only follow the date part, so look past its 10 chars.
            tail = pc.utf8_slice_codeunits(rest, 10)
            aware = np.logical_or.reduce([np_bool(pc.match_substring(tail, m)) for m in ("Z", "z", "+", "-")])
            rest_np = np.asarray(rest.to_numpy(zero_copy_only=False), dtype=object)
            parsed = _iso_ns(rest_np, aware, tz)
            failed = parsed == nat
            if failed.any():                   # JSON floats such as '1692866952.0'
                decimal = np_bool(pc.match_substring_regex(rest, r"^\d{9,13}\.\d*$")) & failed
                if decimal.any():
                    parsed[decimal] = _epoch_ns(np.array(rest_np[decimal], dtype=float))
            utc_ns[present[~epoch]] = parsed
    utc_ns = np.asarray(utc_ns, dtype=np.int64).copy()
    problems = []
    unparsed = ~missing & (utc_ns == nat)
    if unparsed.any():
        problems.append((unparsed, "bad date (日期无法解析) " + quote(shown, unparsed) + f"; {_DATE_HINT}"))
    out_of_range = ~missing & ~unparsed & ((utc_ns < DATE_MIN.value) | (utc_ns >= DATE_MAX.value))
    if out_of_range.any():
        problems.append((out_of_range, "date out of range (日期超出范围) " + quote(shown, out_of_range)
                         + f"; expected {DATE_MIN.year}–{DATE_MAX.year}"))
        utc_ns[out_of_range] = nat
    values = pd.DatetimeIndex(utc_ns.view("datetime64[ns]")).tz_localize("UTC").tz_convert(tz)
    return pd.Series(values, index=s.index), missing, problems


def parse_bool(s: pd.Series) -> tuple[pd.Series, np.ndarray, list]:
    if pd.api.types.is_bool_dtype(s):
        return s.astype("boolean"), s.isna().to_numpy(), []
    arr, missing = as_text(s)
    lower = pc.utf8_lower(arr)
    is_true = np_bool(pc.is_in(lower, value_set=pa.array(sorted(_TRUE))))
    is_false = np_bool(pc.is_in(lower, value_set=pa.array(sorted(_FALSE))))
    out = pd.array(is_true, dtype="boolean")
    out[~(is_true | is_false)] = pd.NA
    bad = ~missing & ~is_true & ~is_false
    problems = [(bad, quote(arr, bad) + " is not true/false (非布尔值)")] if bad.any() else []
    return pd.Series(out, index=s.index), missing, problems


def split_tags(value) -> list[str]:
    """``['a','b']``, ``'a|b'``, ``'a,b'``, ``'a b'``, ``'#a# #b#'``, ``'#a[话题]#'`` → ``['a', 'b']``:
    the shared rule (:func:`miner.schema.split_tags`), with control characters removed from the items
    (list items and JSON strings are not cleaned column-wise)."""
    out: list[str] = []
    for tag in schema_split_tags(value):
        tag = strip_controls_text(tag).strip()
        if tag and tag not in out:
            out.append(tag)
    return out


def parse_list(s: pd.Series) -> tuple[pd.Series, np.ndarray, list]:
    values = pd.Series([split_tags(v) for v in s.astype(object)], index=s.index, dtype=object)
    missing = values.map(len).eq(0).to_numpy()
    return values, missing, []
