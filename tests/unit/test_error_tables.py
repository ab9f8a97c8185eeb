"""Every domain error has its answer in each table: an OCI code and status on /v2, a status
on the REST API; none falls through to 500."""

from __future__ import annotations

import inspect

import pytest

from cargobay import errors
from cargobay.api.oci.errors import lookup
from cargobay.api.rest.app import STATUS
from cargobay.web.app import page_status

DOMAIN_ERRORS = [
    cls
    for _, cls in inspect.getmembers(errors, inspect.isclass)
    if issubclass(cls, errors.CargobayError) and cls is not errors.CargobayError
]


@pytest.mark.parametrize("cls", DOMAIN_ERRORS, ids=lambda c: c.__name__)
def test_every_domain_error_has_an_answer(cls: type[errors.CargobayError]) -> None:
    assert any(base in STATUS for base in cls.__mro__), f"{cls.__name__} missing in REST STATUS"
    if cls not in (errors.AlreadyExists, errors.NotFound, errors.VersionInUse):
        # Only the server's own trouble is 5xx: a backend that is down, or out of storage.
        server_side = (errors.Unavailable, errors.InsufficientStorage)
        assert lookup(cls.__new__(cls))[1] < 500 or cls in server_side


def test_out_of_storage_is_507_and_never_a_retry_forever() -> None:
    exc = errors.InsufficientStorage.__new__(errors.InsufficientStorage)
    assert lookup(exc)[1] == 507
    assert STATUS[errors.InsufficientStorage] == 507


def test_an_unavailable_backend_is_503_everywhere() -> None:
    exc = errors.Unavailable()
    assert lookup(exc) == ("UNAVAILABLE", 503)
    assert STATUS[errors.Unavailable] == 503
    assert page_status(exc)[1] == 503
    assert page_status(errors.NotFound())[1] == 404
    assert page_status(errors.Conflict())[1] == 400  # a form to correct
