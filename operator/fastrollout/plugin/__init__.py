"""`kubectl fastrollout`: the kubectl plugin (console script `kubectl-fastrollout`).

It runs with the user's credentials and starts fast: pykube-ng, not the kubernetes client, and no
pydantic on the common path (bench/plugin_start.py has the numbers). The pure parts (arguments,
milestones, tables, undo's choice) are apart from `kube.py`, the only module that talks to the API.
"""
