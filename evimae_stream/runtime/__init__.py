"""The streaming runtime: scheduler, backends, smoothing, sinks, recorder and the pipeline that
ties drivers → buffers → scheduler → preprocess → backend → smoothing → sinks together."""
