"""The base of every API model: camelCase on the wire, snake_case in Python, immutable."""

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class ApiModel(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        frozen=True,
        # The API server has already pruned unknown fields; tolerate newer ones from a newer CRD.
        extra="ignore",
    )

    def to_wire(self) -> dict[str, object]:
        """The JSON form the API server stores: camelCase keys, unset optionals left out."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")
