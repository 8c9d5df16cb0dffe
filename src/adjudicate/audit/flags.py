"""The flagging pass: arrays from an adjudicated run → the compiled rules → flags.parquet rows.

Claims stay in the settlement order encode.py made for the kernel (member,
settle_date, claim_id), so the pass is one compiled call per member-aligned
chunk (``_audit.flag_claims``), on the engine's thread pool. The flags are then
put in a fixed order (claim position, rule, evidence), so the output does not
depend on the number of threads or on input row order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .. import _audit
from ..encode import Encoded, catalogue_codes, catalogue_rows, lookup
from ..engine import TOTAL, Inputs, Result, _parallel, chunks_by_member
from ..inputs import QUANTITY_SCALE, strings
from ..keep import claim_columns
from ..money import fen_to_decimal
from ..schema import ITEM_KINDS, SETTINGS
from .rules import NEEDS_KIND, RULES, AuditRules

#: Parameter slots of ``_audit.flag_claims`` (its P_* enum).
(
    P_ENABLED,
    P_READMIT_DAYS,
    P_SAME_DX,
    P_INSIDE_SETTINGS,
    P_BED_DAYS,
    P_BED_SHARE_BP,
    P_LARGE_SETTINGS,
    P_LARGE_AMOUNT,
    P_LARGE_QTY,
    P_FREQ_DAYS,
    P_FREQ_MAX,
    P_O2I_DAYS,
    P_O2I_SETTINGS,
    P_KIND_KNOWN,
    P_NONDRUG_KINDS,
) = range(15)
NO_GAP = -(2**31)
# _audit.pyx numbers settings and item kinds as schema.py does
assert SETTINGS == ("inpatient", "outpatient", "special_outpatient", "pharmacy")
assert ITEM_KINDS[:3] == ("drug", "treatment", "facility")
#: Units of the kernel's measure (its U_* enum), as written in flags.parquet.
UNITS = ("days", "lines", "share", "yuan", "units", "claims")
U_DAYS, U_LINES, U_BP, U_FEN, U_QTY, U_CLAIMS = range(6)


def _bits(settings: tuple[int, ...]) -> int:
    return sum(1 << s for s in settings)


def params(rules: AuditRules, kind_known: bool) -> np.ndarray:
    """The rules file as the kernel's parameter vector (rules that need item_kind are off without it)."""
    p = np.zeros(15, np.int64)
    r = rules.rules
    for code, name in enumerate(RULES):
        if r[name].enabled and (kind_known or name not in NEEDS_KIND):
            p[P_ENABLED] |= 1 << code
    p[P_READMIT_DAYS] = r["readmission"].params["window_days"]
    p[P_SAME_DX] = int(r["readmission"].params["same_diagnosis"])
    p[P_INSIDE_SETTINGS] = _bits(r["overlapping_stay"].params["inside_settings"])
    p[P_BED_DAYS] = r["bed_blocking"].params["min_days"]
    p[P_BED_SHARE_BP] = r["bed_blocking"].params["min_facility_share"]
    p[P_LARGE_SETTINGS] = _bits(r["large_prescription"].params["settings"])
    p[P_LARGE_AMOUNT] = r["large_prescription"].params["max_claim_amount"]
    p[P_LARGE_QTY] = r["large_prescription"].params["max_line_quantity"] * 10**QUANTITY_SCALE
    p[P_FREQ_DAYS] = r["pharmacy_frequency"].params["window_days"]
    p[P_FREQ_MAX] = r["pharmacy_frequency"].params["max_purchases"]
    p[P_O2I_DAYS] = r["outpatient_to_inpatient"].params["window_days"]
    p[P_O2I_SETTINGS] = _bits(r["outpatient_to_inpatient"].params["settings"])
    p[P_KIND_KNOWN] = int(kind_known)
    p[P_NONDRUG_KINDS] = _bits(r["pharmacy_non_drug"].params["kinds"])
    return p


@dataclass
class LineFacts:
    """What the rules read about lines beyond the settlement arrays."""

    item: np.ndarray  # int64 code of item_code (equal codes, equal strings)
    kind: np.ndarray  # int8 ITEM_KINDS code, -1 unknown
    kind_known: bool  # the catalogue has an item_kind column with values


def line_facts(enc: Encoded, inputs: Inputs) -> LineFacts:
    """Item codes and catalogue item kinds of the adjudicated lines, vectorised.

    An item's code is its position among the catalogue's codes (one lookup in a
    small set); only the lines of items the catalogue does not know are
    dictionary-encoded, after them.
    """
    cat = inputs.catalogue
    codes = catalogue_codes(cat)
    source = enc.source["item_code"]  # as read: maybe dictionary chunks (inputs.Table.coded)
    item = lookup(source, codes)[enc.line_row]
    unknown = np.flatnonzero(item < 0)
    known = item.copy()
    if len(unknown):
        other = strings(source.take(pa.array(enc.line_row[unknown]))).dictionary_encode().indices
        item[unknown] = len(codes) + np.asarray(pc.fill_null(other, -1), dtype=np.int64)
    kind_known = "item_kind" in cat.values and bool((~cat.nulls["item_kind"]).any())
    if not kind_known:
        return LineFacts(item, np.full(len(item), -1, np.int8), False)
    # the catalogue row valid on the claim's admit date, as the settlement found it
    admit = np.asarray(inputs.claims["admit_date"], dtype=np.int32)[enc.head_row][enc.line_claim]
    crow = catalogue_rows(cat, None, admit, item=known)
    kinds = np.asarray(cat["item_kind"], dtype=np.int8)
    kind = np.where(crow >= 0, kinds[np.maximum(crow, 0)], -1).astype(np.int8)
    return LineFacts(item, kind, True)


def _id_buffers(ids: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(offsets as int64, UTF-8 bytes) of a string array, for byte comparisons in the kernel."""
    ids = ids.cast(pa.large_string()) if not pa.types.is_large_string(ids.type) else ids
    _, off_buf, data_buf = ids.buffers()
    off = np.frombuffer(off_buf, np.int64)[ids.offset : ids.offset + len(ids) + 1]
    data = np.frombuffer(data_buf, np.uint8) if data_buf is not None and data_buf.size else np.zeros(1, np.uint8)
    return np.ascontiguousarray(off), data


def flag(r: Result, inputs: Inputs, rules: AuditRules, facts: LineFacts, threads: int) -> np.ndarray:
    """All flags of the run as an (n, 7) int64 array: claim position, rule code, evidence
    position (-1), gap days (NO_GAP), measure, amount (fen), unit of the measure; sorted."""
    enc = r.enc
    nc = len(enc.member)
    if nc == 0:
        return np.zeros((0, 7), np.int64)
    p = params(rules, facts.kind_known)
    admit = np.ascontiguousarray(np.asarray(inputs.claims["admit_date"], dtype=np.int32)[enc.head_row])
    settle = np.ascontiguousarray(enc.settle_date, dtype=np.int32)
    if rules.rules["readmission"].params["same_diagnosis"]:
        diag = np.asarray(
            pc.fill_null(
                inputs.claims.values["diagnosis"].take(pa.array(enc.head_row)).dictionary_encode().indices, -1
            ),
            dtype=np.int64,
        )
    else:
        diag = np.zeros(nc, np.int64)
    total = np.ascontiguousarray(r.sums[:, TOTAL])
    off, data = _id_buffers(enc.claim_dict)
    member = np.ascontiguousarray(enc.member, dtype=np.int64)
    provider = np.ascontiguousarray(enc.provider, dtype=np.int64)
    setting = np.ascontiguousarray(enc.setting, dtype=np.int8)
    code = np.ascontiguousarray(enc.claim_code, dtype=np.int64)
    amount = np.ascontiguousarray(enc.amount, dtype=np.int64)
    qty = np.ascontiguousarray(enc.quantity, dtype=np.int64)
    ranges = chunks_by_member(enc.member, threads)
    found: dict[int, np.ndarray] = {}

    def run(a: int, b: int) -> None:
        scratch = np.empty(max(b - a, 1), np.uint64)
        cap = max(64, (b - a) // 16)
        while True:
            out = np.empty((cap, 7), np.int64)
            n = _audit.flag_claims(
                member,
                provider,
                setting,
                admit,
                settle,
                diag,
                total,
                enc.line_start,
                facts.item,
                qty,
                amount,
                facts.kind,
                code,
                off,
                data,
                p,
                a,
                b,
                scratch,
                out,
            )
            if n <= cap:
                found[a] = out[:n]
                return
            cap = n

    _parallel(run, ranges, threads)
    flags = np.concatenate([found[a] for a, _ in ranges]) if found else np.zeros((0, 7), np.int64)
    order = np.lexsort((flags[:, 2], flags[:, 1], flags[:, 0]))
    return flags[order]


def _text(parts: list) -> pa.Array:
    """Element-wise concatenation of string arrays and scalars."""
    arrays = [p if isinstance(p, (pa.Array, pa.ChunkedArray)) else pa.scalar(str(p)) for p in parts]
    return pc.binary_join_element_wise(*arrays, "")


def _yuan_text(fen: np.ndarray) -> pa.Array:
    return fen_to_decimal(fen).cast(pa.string())


def flags_table(r: Result, rules: AuditRules, flags: np.ndarray) -> pa.Table:
    """flags.parquet: one row per (claim, rule, evidence claim), with typed evidence and a readable text."""
    enc = r.enc
    claim, rule, other, gap, measure, amt, unit = (flags[:, k] for k in range(7))
    has_other = other >= 0
    oth = np.where(has_other, other, 0)
    has_gap = gap != NO_GAP
    total = r.sums[:, TOTAL]
    # strings of the flagged claims only (not enc.claim_id etc., which gather every claim)
    claim_ids = enc.claim_dict.take(pa.array(enc.claim_code[claim]))
    provider_ids = strings(enc.source["provider_id"].take(pa.array(enc.head_row[claim])))
    other_ids = enc.claim_dict.take(pa.array(enc.claim_code[oth]))
    other_provs = strings(enc.source["provider_id"].take(pa.array(enc.head_row[oth])))
    rule_names = pa.array(list(RULES))
    severities = pa.array([rules.rules[n].severity for n in RULES])
    codes = pa.array(rule.astype(np.int32))
    other_id = pc.if_else(pa.array(has_other), other_ids, pa.scalar(None, other_ids.type))
    other_prov = pc.if_else(pa.array(has_other), other_provs, pa.scalar(None, other_provs.type))
    settle = enc.settle_date
    text = pa.nulls(len(flags), pa.string())
    measure_s = pa.array(measure).cast(pa.string())
    gap_s = pa.array(np.where(has_gap, gap, 0)).cast(pa.string())
    amt_s = _yuan_text(amt)
    other_s = pc.fill_null(other_id, "")
    other_date = pa.array(np.where(has_other, settle[oth], 0).astype(np.int32)).cast(pa.date32()).cast(pa.string())
    # the measure in its unit: fen as yuan, quantities in units, basis points as a fraction
    scale = np.select([unit == U_FEN, unit == U_QTY, unit == U_BP], [100.0, 10.0**QUANTITY_SCALE, 10_000.0], 1.0)
    value = measure / scale
    qty_units = pa.array(value).cast(pa.string())
    share = pa.array(np.round(measure / 100.0, 2)).cast(pa.string())
    texts = {
        "readmission": [
            "admitted ",
            gap_s,
            " day(s) after discharge on ",
            other_date,
            " from the same provider (claim ",
            other_s,
            ", total ",
            amt_s,
            " yuan)",
        ],
        "overlapping_stay": [
            "overlaps stay ",
            other_s,
            " at provider ",
            pc.fill_null(other_prov, ""),
            " by ",
            gap_s,
            " day(s) (its total ",
            amt_s,
            " yuan)",
        ],
        "duplicate_billing": [
            "same provider, setting, admit date and ",
            measure_s,
            " identical line(s) as claim ",
            other_s,
            " (total ",
            amt_s,
            " yuan)",
        ],
        "bed_blocking": ["stay of ", gap_s, " day(s) billed ", share, " % as bed and nursing (", amt_s, " yuan)"],
        "pharmacy_non_drug": [measure_s, " line(s) that are not drugs at a pharmacy (", amt_s, " yuan)"],
        "pharmacy_frequency": [
            measure_s,
            " pharmacy purchases within the window, the first on ",
            other_date,
            " (claim ",
            other_s,
            ")",
        ],
        "outpatient_to_inpatient": [
            "admitted ",
            gap_s,
            " day(s) after outpatient claim ",
            other_s,
            " at the same provider billing an item the stay bills again (",
            amt_s,
            " yuan)",
        ],
    }
    is_qty = unit == U_QTY
    large = pc.if_else(
        pa.array(is_qty),
        _text(["a drug line of quantity ", qty_units, " (", amt_s, " yuan) above the limit"]),
        _text(["visit total ", amt_s, " yuan above the limit"]),
    )
    for name, parts in texts.items():
        text = pc.if_else(pa.array(rule == RULES.index(name)), _text(parts), text)
    text = pc.if_else(pa.array(rule == RULES.index("large_prescription")), large, text)
    inside = (rule == RULES.index("overlapping_stay")) & (enc.setting[claim] != SETTINGS.index("inpatient"))
    text = pc.if_else(
        pa.array(inside),
        _text(
            [
                "on day ",
                gap_s,
                " of stay ",
                other_s,
                " at provider ",
                pc.fill_null(other_prov, ""),
                " (its total ",
                amt_s,
                " yuan)",
            ]
        ),
        text,
    )
    return pa.table(
        {
            "claim_id": claim_ids,
            "member_id": strings(enc.source["member_id"].take(pa.array(enc.head_row[claim]))),
            "provider_id": provider_ids,
            "setting": pa.array(SETTINGS).take(pa.array(enc.setting[claim].astype(np.int32))),
            "settle_date": pa.array(settle[claim].astype(np.int32)).cast(pa.date32()),
            "rule": rule_names.take(codes),
            "severity": severities.take(codes),
            "claim_total": fen_to_decimal(total[claim]),
            "evidence_claim_id": other_id,
            "evidence_provider_id": other_prov,
            "gap_days": pa.array(gap.astype(np.int32), mask=~has_gap),
            "measure": pa.array(value),
            "measure_unit": pa.array(list(UNITS)).take(pa.array(unit.astype(np.int32))),
            "evidence_amount": fen_to_decimal(amt),
            "evidence": text,
            **claim_columns(enc, claim),  # --keep: the flagged claim's own columns
        }
    )
