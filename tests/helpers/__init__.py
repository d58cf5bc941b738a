"""Code the tests share: builders of sessions and artifacts, CLI and runtime helpers,
pseudo-terminal devices, reference implementations. Stand-ins for what cannot exist
here (a BLE radio, a TensorRT compiler) are in ``tests/mocks``."""
