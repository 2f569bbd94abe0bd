"""Who the metrics are about: :class:`AudienceFilter` (gender / age band / city tier / interests)."""
from __future__ import annotations

from dataclasses import dataclass, fields

from miner.schema import AUDIENCE

__all__ = ["AudienceFilter", "DEFAULT_STRATA"]

DEFAULT_STRATA = ("gender", "age_band", "city_tier")
_GENDER_ZH = {"F": "女性", "M": "男性", "U": "性别未知"}
_TIER_ZH = {"1": "一线", "new1": "新一线", "2": "二线", "3": "三线", "4+": "四线及以下"}


def column_type(con, table: str, column: str) -> str:
    """DuckDB data type of ``table.column`` ('' when absent)."""
    row = con.execute("SELECT data_type FROM information_schema.columns WHERE table_name = ? AND column_name = ?",
                      [table, column]).fetchone()
    return row[0] if row else ""


@dataclass(frozen=True)
class AudienceFilter:
    """A target audience: users matching every given filter (values inside one filter OR).

    Each filter is a string or a tuple of strings; ``interests`` matches users having any of them.
    ``AudienceFilter()`` is everyone in the audience table. (Called ``Segment`` before; the word
    segment now only means a demographic stratum of the lift baseline.)
    """

    gender: str | tuple[str, ...] | None = None
    age_band: str | tuple[str, ...] | None = None
    city_tier: str | tuple[str, ...] | None = None
    interests: str | tuple[str, ...] | None = None
    name_zh: str = ""

    @classmethod
    def from_spec(cls, spec: "str | dict | AudienceFilter | None", name_zh: str = "") -> "AudienceFilter":
        """Parse ``"gender=F,age_band=18-24|25-34"`` (or a dict) and check values against the schema."""
        if spec is None or isinstance(spec, AudienceFilter):
            return spec or cls()
        if isinstance(spec, str):
            items = {}
            for part in filter(None, (p.strip() for p in spec.split(","))):
                key, sep, value = part.partition("=")
                if not sep:
                    raise ValueError(f"segment part {part!r} is not key=value (e.g. gender=F,age_band=18-24)")
                items[key.strip()] = tuple(v.strip() for v in value.split("|") if v.strip())
            spec = items
        known = [f.name for f in fields(cls) if f.name != "name_zh"]
        clean = {}
        for key, value in spec.items():
            if key not in known:
                raise ValueError(f"unknown segment key {key!r}; use one of {known}")
            values = (value,) if isinstance(value, str) else tuple(value)
            allowed = AUDIENCE.column(key).allowed
            bad = [v for v in values if allowed and v not in allowed]
            if bad:
                raise ValueError(f"segment {key}={bad}: allowed values are {list(allowed)}")
            clean[key] = values
        return cls(**clean, name_zh=name_zh)

    def filters(self) -> dict[str, tuple[str, ...]]:
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name != "name_zh" and value:
                out[f.name] = (value,) if isinstance(value, str) else tuple(value)
        return out

    @property
    def label(self) -> str:
        """``name_zh`` if set, else a generated Chinese description such as ``女性·18-24岁``."""
        if self.name_zh:
            return self.name_zh
        f = self.filters()
        parts = ["/".join(_GENDER_ZH.get(v, v) for v in f.get("gender", ()))]
        parts.append("/".join(f"{v}岁" for v in f.get("age_band", ())))
        parts.append("/".join(_TIER_ZH.get(v, v) for v in f.get("city_tier", ())))
        parts.append(("兴趣:" + "/".join(f["interests"])) if "interests" in f else "")
        return "·".join(p for p in parts if p) or "全部用户"

    def where_sql(self, con, alias: str = "au") -> tuple[str, list]:
        """SQL predicate over the audience table and its parameters."""
        clauses, params = ["TRUE"], []
        for key, values in self.filters().items():
            marks = ", ".join("?" for _ in values)
            if key != "interests":
                clauses.append(f"{alias}.{key} IN ({marks})")
            elif column_type(con, "audience", "interests").endswith("[]"):
                clauses.append(f"list_has_any({alias}.interests, [{marks}])")
            else:   # interests stored as a '|'/','-joined string
                clauses.append("(" + " OR ".join(
                    f"list_contains(string_split_regex({alias}.interests, '[|,]'), ?)" for _ in values) + ")")
            params.extend(values)
        return " AND ".join(clauses), params
