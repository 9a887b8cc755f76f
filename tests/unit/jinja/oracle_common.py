"""Shared helpers of the Jinja / chat-template oracles.

Templates are compiled by transformers' own `_compile_jinja_template`, i.e. jinja2 (pinned in
scripts/requirements-test.txt) in the exact environment apply_chat_template uses:
ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True) with loopcontrols, the
`generation` tag, and transformers' tojson / raise_exception / strftime_now.
"""

import datetime as _datetime
import logging
import os
import warnings

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
warnings.filterwarnings("ignore")
logging.disable(logging.WARNING)

from transformers.utils import chat_template_utils  # noqa: E402

# The fixed "now" of every test render; the C++ side passes the same instant as date_string.
FIXED_NOW = _datetime.datetime(2024, 7, 26, 10, 30, 0)
FIXED_DATE_STRING = "2024-07-26T10:30:00"


class _FixedDatetime(_datetime.datetime):
    @classmethod
    def now(cls, tz=None):  # noqa: D102
        return FIXED_NOW


# strftime_now() reads the module-global `datetime` at call time.
chat_template_utils.datetime = _FixedDatetime


def compile_template(source):
    return chat_template_utils._compile_jinja_template(source)


def describe_error(exc):
    """(category, message): category is what the C++ side must report."""
    import jinja2

    name = type(exc).__name__
    if isinstance(exc, (jinja2.TemplateSyntaxError, jinja2.TemplateAssertionError, SyntaxError)):
        category = "syntax"
    elif type(exc) is jinja2.TemplateError:  # raise_exception()
        category = "raised"
    else:
        category = "runtime"
    return category, f"{name}: {exc}"
