"""The contracts between stages: ``docs/CONTRIBUTING_CONTRACTS.md``, generated from the stages' own schemas.

Reads the schema constants of every stage (parquet columns, ``schema_version``) and the one-line
meanings in :mod:`lexalign.contracts.outputs`; writes the document (``lexalign contracts-doc``). It sits
above the stages (like ``cli`` and ``testing``): no stage imports it.
"""
