"""The Ansible engine: the playbooks run against an environment's rendered inventory.

converge (the run, through ansible-runner, and its per-host stats) → cli (`govops converge`).
The inventory itself is rendered from the registry by govops/render/ansible.py.
"""
