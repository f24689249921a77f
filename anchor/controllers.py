"""HTTP in and out: the routes, the form, the status codes.

    POST /v1/sign/<ra>   form: user, secret, encoding, csr  -> PEM certificate
    GET  /v1/ca/<ra>     the RA's CA certificate in PEM
    GET  /robots.txt     keep crawlers away

Every answer is text/plain with a short body.  What went wrong in detail is
in the log, never in the response.
"""

import logging

import pecan

from anchor import issuance

LOG = logging.getLogger(__name__)

ROBOTS_TXT = "User-agent: *\nDisallow: /\n"
FORM_FIELDS = ("user", "secret", "encoding", "csr")


class BadForm(Exception):
    pass


def _answer(status, text, **headers):
    pecan.response.status = status
    pecan.response.headers.update(headers)
    return text if text.endswith("\n") else text + "\n"


def read_form(request):
    """The signing form's fields; BadForm when the body cannot be one."""
    try:
        post = request.POST
        fields = {}
        for name in FORM_FIELDS:
            values = post.getall(name)
            if len(values) > 1:
                raise BadForm("field %r given more than once" % name)
            value = values[0] if values else None
            if value is not None and not isinstance(value, str):
                value = value.value  # a file upload: its bytes
                if name != "csr":
                    value = value.decode("utf-8")
            fields[name] = value
    except BadForm:
        raise
    except (ValueError, LookupError, UnicodeError) as exc:
        raise BadForm("the request body is not a readable form") from exc
    return issuance.PostedRequest(**fields)


class NotFound:
    """Answers any path its controller does not know with a plain 404."""

    @pecan.expose(content_type="text/plain")
    def _default(self, *remainder):
        return _answer(404, "not found")


class V1Controller(NotFound):
    def __init__(self, authorities):
        self.authorities = authorities

    def _authority(self, ra_name, remainder):
        if remainder or ra_name is None:
            return None
        return self.authorities.get(ra_name)

    @pecan.expose(content_type="text/plain")
    def sign(self, ra_name=None, *remainder):
        ra = self._authority(ra_name, remainder)
        if ra is None:
            return _answer(404, "no such registration authority")
        if pecan.request.method != "POST":
            return _answer(405, "use POST", Allow="POST")
        try:
            posted = read_form(pecan.request)
        except BadForm as exc:
            LOG.warning("RA %s: unreadable form: %s", ra.name, exc)
            return _answer(400, str(exc))
        try:
            pem = issuance.issue(ra, posted, pecan.request)
        except issuance.IssuanceError as error:
            return _answer(error.status, error.public)
        except Exception:
            LOG.exception("RA %s: unexpected error while signing", ra.name)
            return _answer(500, "internal error")
        return _answer(200, pem.decode("ascii"))

    @pecan.expose(content_type="text/plain")
    def ca(self, ra_name=None, *remainder):
        ra = self._authority(ra_name, remainder)
        if ra is None:
            return _answer(404, "no such registration authority")
        if pecan.request.method not in ("GET", "HEAD"):
            return _answer(405, "use GET", Allow="GET, HEAD")
        return _answer(200, ra.ca_pem.decode("ascii"))


class RootController(NotFound):
    def __init__(self, authorities):
        self.v1 = V1Controller(authorities)

    @pecan.expose(content_type="text/plain", route="robots.txt")
    def robots(self):
        return ROBOTS_TXT
