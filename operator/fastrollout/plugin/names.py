"""The API names the plugin needs, without importing `fastrollout.api` (pydantic: ~250-700 ms here).

tests/unit/plugin/test_plugin_pure.py holds them equal to fastrollout.api's constants.
"""

GROUP = "fastrollout.io"
API_VERSION = f"{GROUP}/v1alpha1"
PLURAL = "fastrollouts"
LABEL_NAME = f"{GROUP}/name"
LABEL_VERSION = f"{GROUP}/version"
LABEL_REVISION = f"{GROUP}/revision"
ANNOTATION_SOURCE = f"{GROUP}/source"
ANNOTATION_RESTARTED_AT = f"{GROUP}/restartedAt"  # set in the pod template by `restart`
