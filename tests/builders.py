"""Small hand-made data sets for tests: write the four input tables from Python rows."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

D = Decimal


def day(s: str) -> dt.date:
    return dt.date.fromisoformat(s)


CLAIM_TYPES = {
    "claim_id": pa.string(),
    "line_no": pa.int32(),
    "member_id": pa.string(),
    "provider_id": pa.string(),
    "setting": pa.string(),
    "referral": pa.string(),
    "admit_date": pa.date32(),
    "discharge_date": pa.date32(),
    "item_code": pa.string(),
    "quantity": pa.float64(),
    "unit_price": pa.decimal128(14, 2),
    "amount": pa.decimal128(14, 2),
    "diagnosis": pa.string(),
}
MEMBER_TYPES = {
    "member_id": pa.string(),
    "birth_date": pa.date32(),
    "category": pa.string(),
    "civil_servant": pa.bool_(),
    "enrolled_since": pa.date32(),
    "account_balance": pa.decimal128(14, 2),
    "prior_year_wage": pa.decimal128(14, 2),
}
PROVIDER_TYPES = {
    "provider_id": pa.string(),
    "kind": pa.string(),
    "level": pa.int8(),
    "designated": pa.bool_(),
    "local": pa.bool_(),
    "quota_per_admission": pa.decimal128(14, 2),
}
CATALOGUE_TYPES = {
    "item_code": pa.string(),
    "name": pa.string(),
    "class": pa.string(),
    "first_self_pay_ratio": pa.decimal128(6, 4),
    "max_unit_price": pa.decimal128(18, 4),
    "valid_from": pa.date32(),
    "valid_to": pa.date32(),
}


def table(rows: list[dict], types: dict) -> pa.Table:
    return pa.table({k: pa.array([r.get(k) for r in rows], t) for k, t in types.items()})


class Case:
    """Builder: add members, providers, catalogue items and claims, then ``write(folder)``."""

    def __init__(self) -> None:
        self.claims: list[dict] = []
        self.members: list[dict] = []
        self.providers: list[dict] = []
        self.catalogue: list[dict] = [
            dict(item_code="A1", name="class A item", **{"class": "A"}, valid_from=day("2000-01-01")),
            dict(item_code="B1", name="class B item", **{"class": "B"}, valid_from=day("2000-01-01")),
            dict(item_code="S1", name="special item", **{"class": "special"}, valid_from=day("2000-01-01")),
            dict(item_code="P1", name="supplementary item", **{"class": "supplementary"}, valid_from=day("2000-01-01")),
            dict(item_code="X1", name="excluded item", **{"class": "excluded"}, valid_from=day("2000-01-01")),
        ]

    def member(
        self,
        member_id="M1",
        category="in_service",
        civil_servant=False,
        balance="0",
        enrolled_since="2000-01-01",
        birth="1970-06-01",
        wage="60000",
    ) -> Case:
        self.members.append(
            dict(
                member_id=member_id,
                birth_date=day(birth),
                category=category,
                civil_servant=civil_servant,
                enrolled_since=day(enrolled_since),
                account_balance=D(balance),
                prior_year_wage=D(wage) if wage else None,
            )
        )
        return self

    def provider(self, provider_id="H3", kind="hospital", level=3, designated=True, local=True, quota=None) -> Case:
        self.providers.append(
            dict(
                provider_id=provider_id,
                kind=kind,
                level=level,
                designated=designated,
                local=local,
                quota_per_admission=D(quota) if quota else None,
            )
        )
        return self

    def item(self, item_code, cls, valid_from="2000-01-01", valid_to=None, ratio=None, max_price=None) -> Case:
        self.catalogue.append(
            dict(
                item_code=item_code,
                name=item_code,
                **{"class": cls},
                first_self_pay_ratio=D(ratio) if ratio is not None else None,
                max_unit_price=D(max_price) if max_price is not None else None,
                valid_from=day(valid_from),
                valid_to=day(valid_to) if valid_to else None,
            )
        )
        return self

    def claim(
        self,
        claim_id,
        lines,
        member_id="M1",
        provider_id="H3",
        setting="inpatient",
        admit="2024-03-01",
        discharge="2024-03-10",
        referral=None,
        diagnosis="I10",
    ) -> Case:
        """``lines``: list of (item_code, amount) or (item_code, amount, quantity)."""
        for no, line in enumerate(lines, start=1):
            item, amount = line[0], D(str(line[1]))
            qty = line[2] if len(line) > 2 else 1.0
            self.claims.append(
                dict(
                    claim_id=claim_id,
                    line_no=no,
                    member_id=member_id,
                    provider_id=provider_id,
                    setting=setting,
                    referral=referral,
                    admit_date=day(admit),
                    discharge_date=day(discharge) if (discharge and setting == "inpatient") else None,
                    item_code=item,
                    quantity=float(qty),
                    unit_price=(amount / D(str(qty))).quantize(D("0.01")),
                    amount=amount,
                    diagnosis=diagnosis,
                )
            )
        return self

    def tables(self) -> dict[str, pa.Table]:
        return {
            "claims": table(self.claims, CLAIM_TYPES),
            "members": table(self.members, MEMBER_TYPES),
            "providers": table(self.providers, PROVIDER_TYPES),
            "catalogue": table(self.catalogue, CATALOGUE_TYPES),
        }

    def write(self, folder: Path) -> dict[str, Path]:
        folder.mkdir(parents=True, exist_ok=True)
        paths = {}
        for name, t in self.tables().items():
            paths[name] = folder / f"{name}.parquet"
            pq.write_table(t, paths[name])
        return paths


def numbers_not_delta_encoded(path) -> list[str]:
    """The integer, date and decimal columns of a Parquet output file stored without
    DELTA_BINARY_PACKED: every output is written with ``outputs.parquet_options``."""
    f = pq.ParquetFile(path)
    schema = f.schema_arrow
    numbers = {
        x.name for x in schema if pa.types.is_integer(x.type) or pa.types.is_date(x.type) or pa.types.is_decimal(x.type)
    }
    return sorted(
        {
            f.metadata.row_group(g).column(i).path_in_schema
            for g in range(f.metadata.num_row_groups)
            for i in range(f.metadata.num_columns)
            if f.metadata.row_group(g).column(i).path_in_schema in numbers
            and "DELTA_BINARY_PACKED" not in f.metadata.row_group(g).column(i).encodings
        }
    )


INPUT_NAMES = ("claims", "members", "providers", "catalogue")


def generated_inputs(folder: Path, members: int = 300, seed: int = 7):
    """The generator's four tables (2024, rows in date order) written to ``folder`` and read back
    as the engine reads them: a small real data set for tests of the stages after the read."""
    from adjudicate.engine import read_inputs
    from adjudicate.generate import generate_tables, write_dataset

    write_dataset(generate_tables(members=members, year=2024, seed=seed, order="date"), folder)
    return read_inputs(*([folder / f"{n}.parquet"] for n in INPUT_NAMES))
