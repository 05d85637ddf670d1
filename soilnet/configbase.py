"""Base class for every typed configuration section."""

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """A configuration section: unknown keys are errors, values are validated on assignment.

    Floats must be finite (``.inf`` or ``.nan`` in a config is a mistake); a field where NaN means
    something (a nodata value) opts in with ``Field(..., allow_inf_nan=True)``.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False, allow_inf_nan=False)
