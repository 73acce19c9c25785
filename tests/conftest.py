import os

# Tests must never pick up a developer's own mesh state or registry.
for name in list(os.environ):
    if name.startswith("MESH_") and not name.startswith("MESH_TEST_"):
        del os.environ[name]
