"""Sensor drivers: serial and BLE IMUs, the camera, their protocols and the ``--imu-ports`` URIs.

Public entry points: :func:`drivers.uri.parse_imu_ports`, :func:`drivers.factory.make_imu_driver`,
:class:`drivers.camera.CameraDriver`, :class:`drivers.base.Driver` (lifecycle and stats).
Imports only the core's small modules (types, errors, sink, clock), never the model.
"""
