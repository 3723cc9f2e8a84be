"""Every endpoint in /docs carries an example, so a newcomer can try each one from the page."""

from pydantic import SecretStr

from api.app import create_app
from runtime.settings import Settings


def operations():
    spec = create_app(Settings(api_key=SecretStr("k")), api_key="k").openapi()
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            yield path, method, operation


def has_example(node) -> bool:
    if isinstance(node, dict):
        if "example" in node or "examples" in node:
            return True
        return any(has_example(value) for value in node.values())
    if isinstance(node, list):
        return any(has_example(value) for value in node)
    return False


def test_every_endpoint_has_an_example_and_a_summary():
    missing = [f"{method.upper()} {path}" for path, method, op in operations() if not has_example(op)]
    assert missing == []
    unsummarized = [f"{method.upper()} {path}" for path, method, op in operations() if not op.get("summary")]
    assert unsummarized == []
