"""The two definitions every measure can be computed by: ``corrected`` (this workflow's, the default) and
``study`` (the ALIGN study's code, kept for comparison with its numbers). Stages that compute a measure both
ways (split, templates, rewards, tier 1, profile, WVS metrics) take their choice from here."""

DEFINITIONS = ("corrected", "study")
