"""The configuration layer: schema validation (``validation``, schema in ``resources/schema.yaml``), the method
registry (``methods``), training presets and trainer pass-through arguments, the run grid (``grid``), the
values the config implies (``derive``), WVS countries, and the generated key reference (``docs``).
Imports only ``core``: no stage."""
