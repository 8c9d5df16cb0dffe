"""``adjudicate explain``: the step-by-step calculation of one claim."""

from __future__ import annotations

import click

from .common import (
    CLICK_SETTINGS,
    Progress,
    errors,
    inputs_or_dataset_options,
    json_option,
    policy_option,
    threads_option,
    with_lang,
    with_log_file,
)


@click.command(context_settings=CLICK_SETTINGS)
@click.argument("claim_id")
@inputs_or_dataset_options
@policy_option
@json_option
@threads_option
@with_lang
@with_log_file
def explain(claim_id, claims, members, providers, catalogue, dataset, policy_name, as_json, threads) -> None:
    """Print the step-by-step calculation of one claim, with the policy key behind each number.

    Only the claim's member is settled (its year so far counts; other members do not).
    --threads bounds the whole command (the read included), as for `run`.

    \b
    Example:
      adjudicate explain C0000042 --claims claims.parquet --members members.parquet \\
          --providers providers.parquet --catalogue catalogue.parquet --policy prefecture-employee
      adjudicate explain C0000042 --dataset ds/ --policy prefecture-employee
    """
    from ..explain import explain_claim, render, to_json

    with errors():
        progress = Progress(as_json, "explaining", ["read", "reference", "kernel"])
        try:
            report = explain_claim(claim_id, claims, members, providers, catalogue, policy_name, progress, dataset)
        finally:
            progress.close()
        if as_json:
            click.echo(to_json(report))
        else:
            from .tables import show

            render(report, show=show)
