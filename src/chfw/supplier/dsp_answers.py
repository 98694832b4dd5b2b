"""What the DSP's inventory answers mean for N999 look-ups, and the receiver's start-up check.

Every failure is turned into an :class:`InventoryLookupError` that says what to
check (never a bare ``All connection attempts failed`` or
``CERTIFICATE_VERIFY_FAILED``) and whether it is the DSP's as a whole
(``whole_dsp``: token, network, TLS, 429, 5xx), which pauses every look-up
behind one back-off (:class:`chfw.supplier.lookup.LookupWorker`).
:func:`check_dsp` asks the DSP once when ``chfw receiver serve --dsp-url`` starts.
"""

from __future__ import annotations

import httpx

from chfw.core.domain import DeviceId
from chfw.exceptions import ChfwError, ConfigError
from chfw.supplier.dsp_client import DspClient, snippet

INVENTORY_PATH = "/su/v1/inventory/{device_id}"
PROBE = DeviceId.parse("00-00-00-00-00-00-00-00")  # no CH: 404 when the token is good


class InventoryLookupError(ChfwError):
    """The DSP's inventory did not give a CH's firmware version; the lookup is retried.

    ``whole_dsp``: the failure is the DSP's as a whole (token, network, TLS, 429,
    5xx), not this CH's: every look-up waits behind one back-off.
    """

    def __init__(self, message: str, *, whole_dsp: bool = False) -> None:
        super().__init__(message)
        self.whole_dsp = whole_dsp


def _untrusted(text: str) -> bool:
    return "CERTIFICATE_VERIFY_FAILED" in text


def _refused_tls(text: str) -> bool:
    return "ALERT" in text.upper() and "SSL" in text.upper()


def transport_problem(base_url: str, exc: httpx.HTTPError) -> InventoryLookupError:
    """A network or TLS failure reaching the DSP, as what to check (never a bare
    'All connection attempts failed')."""
    text = str(exc) or type(exc).__name__
    if _untrusted(text):
        what = (
            f"the DSP's certificate at {base_url} is not trusted ({text}): give the CA that "
            "issued it with --dsp-ca-bundle"
        )
    elif _refused_tls(text):
        what = (
            f"the DSP at {base_url} refused our TLS handshake ({text}): if it requires a client "
            "certificate, give --dsp-client-cert and --dsp-client-key"
        )
    elif isinstance(exc, httpx.RemoteProtocolError) and base_url.startswith("https"):
        what = (
            f"the DSP at {base_url} closed the connection without answering ({text}): if it "
            "requires a client certificate (mutual TLS), give --dsp-client-cert and "
            "--dsp-client-key"
        )
    elif isinstance(exc, httpx.TimeoutException):
        what = (
            f"the DSP at {base_url} did not answer in time ({type(exc).__name__}): is it "
            "overloaded, or is a firewall dropping the connection?"
        )
    elif isinstance(exc, httpx.ConnectError):
        what = (
            f"cannot connect to the DSP at {base_url} ({text}): is it running, and are "
            "--dsp-url's host and port right?"
        )
    else:
        what = f"talking to the DSP at {base_url} failed: {text}"
    return InventoryLookupError(what, whole_dsp=True)


def status_problem(url: str, device_id: DeviceId, response: httpx.Response) -> InventoryLookupError:
    """What a non-200 answer means, and whether it is the DSP's as a whole."""
    status = response.status_code
    if status == 401:
        return InventoryLookupError(
            f"GET {url}: the DSP refused our token (401); issue a new one on the DSP with "
            "`chfw users token USER_ID` and give it to the receiver "
            "(--dsp-token or CHFW_RECEIVER_DSP_TOKEN)",
            whole_dsp=True,
        )
    if status == 404:
        return InventoryLookupError(
            f"GET {url}: the DSP knows no CH {device_id} that our Service User is a "
            "Responsible Supplier of (404); check the CH's registration"
        )
    if status == 429:
        return InventoryLookupError(
            f"GET {url} answered 429: the DSP is limiting this address after wrong tokens; "
            "check the token, the DSP lets us in again after its Retry-After",
            whole_dsp=True,
        )
    return InventoryLookupError(
        f"GET {url} answered {status}: {snippet(response)}", whole_dsp=status >= 500
    )


def check_dsp(client: DspClient) -> str | None:
    """Ask the DSP once, as the receiver starts, with our token and TLS settings.

    Raises ConfigError for a set-up mistake (the token refused, the DSP's
    certificate not trusted, our TLS refused); returns a warning when the DSP
    cannot be reached now (the receiver starts anyway and its look-ups wait for
    the DSP); None when the DSP answered. It asks for a Device ID no CH has, so
    a good token gets 404.
    """
    path = INVENTORY_PATH.format(device_id=PROBE)
    try:
        response = client.get(path)
    except httpx.HTTPError as exc:
        problem = str(transport_problem(client.base_url, exc))
        if _untrusted(str(exc)) or _refused_tls(str(exc)):  # a set-up mistake, not an outage
            raise ConfigError(problem) from None
        return f"{problem}; starting anyway: N999 look-ups wait until the DSP answers"
    if response.status_code in (200, 400, 404):
        return None
    problem = str(status_problem(client.base_url + path, PROBE, response))
    if response.status_code == 401:
        raise ConfigError(problem)
    return f"{problem}; starting anyway: N999 look-ups wait until the DSP answers"
