"""A stand-in for pydantic in the kubectl-bind zipapp (tools/plugin_stubs/README.md).

The kubernetes client imports pydantic in api_client.py (`SecretStr`, checked against values it
serializes) and api_response.py (a `BaseModel` class declared with `Field` and strict types, built
only by `response_deserialize`, which kubectl-bind never calls). These are the names that import
path needs, inert: no validation. Nothing else is provided, so a new use (the generated models and
API classes) fails at import instead of running unvalidated.
"""

StrictBool = bool
StrictBytes = bytes
StrictFloat = float
StrictInt = int
StrictStr = str


def Field(default=None, **kwargs):  # noqa: N802 - pydantic's name
    return default


class BaseModel:
    def __init__(self, **fields):
        raise NotImplementedError("pydantic models are not available in the kubectl-bind zipapp")


class SecretStr:
    def __init__(self, value):
        self._secret_value = value

    def get_secret_value(self):
        return self._secret_value

    def __eq__(self, other):
        return isinstance(other, SecretStr) and other._secret_value == self._secret_value

    def __hash__(self):
        return hash(self._secret_value)

    def __repr__(self):
        return "SecretStr('**********')"

    __str__ = __repr__
