"""Endpoint groups for every OKX V5 REST endpoint, declared from the registry. Thin.

``client.trade``, ``client.account``, ``client.market``, ``client.public``,
``client.asset`` (registry group ``funding``), ``client.subaccount`` (``sub-account``),
``client.system`` (``status``), ``client.algo``, ``client.grid``, ``client.signal``,
``client.recurring``, ``client.dca``, ``client.copytrading``, ``client.spread``,
``client.rfq``, ``client.rubik``, ``client.finance``, ``client.fiat``,
``client.affiliate``, ``client.support``. Method names are the registry's ``name``
column without a leading group prefix (``client.grid.amend_order`` for
``grid_amend_order``; :func:`method_name`), plus the few aliases in :data:`ALIASES`. The machinery lives in
:mod:`okx_sync.rest.named`; ``api.pyi`` beside this file is the generated typed view
(``python scripts/gen_api_stub.py``) that IDEs and mypy read.

Endpoints without a core model return lists of records generated from
``results.tsv`` (the answer fields in the OKX docs); their classes are named after the
registry name (``get_funding_rate`` -> ``GetFundingRateResult``, nested
``GetBalanceResultDetails``...), built on first use and importable from this module.
"""

from __future__ import annotations

from typing import Any

from .named import (
    ALIASES,
    GROUP_CLASSES,
    ORDER_VALIDATION,
    RESULTS,
    EndpointGroup,
    RestAPI,
    call_named,
    convert_result,
    group_attr,
    method_for,
    method_name,
    method_names,
    record_named,
    result_name,
    result_record,
)

__all__ = [
    "ALIASES",
    "GROUP_CLASSES",
    "ORDER_VALIDATION",
    "RESULTS",
    "EndpointGroup",
    "RestAPI",
    "call_named",
    "convert_result",
    "group_attr",
    "method_for",
    "method_name",
    "method_names",
    "result_name",
    "result_record",
]


def __getattr__(name: str) -> Any:
    """A result record class by name (``GetFundingRateResult``), built on demand."""
    cls = record_named(name) if name[:1].isupper() else None
    if cls is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return cls
