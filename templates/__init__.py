"""jinja2 templates and Yosys scripts, shipped as package data; `render` is the one way to fill them."""

from importlib.resources import files

import jinja2

_ENV = jinja2.Environment(
    loader=jinja2.FunctionLoader(lambda name: files(__name__).joinpath(name).read_text()),
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
)


def render(name: str, **context) -> str:
    """Render the template file ``name`` of this package with ``context``; a missing variable is an error."""
    return _ENV.get_template(name).render(**context)
