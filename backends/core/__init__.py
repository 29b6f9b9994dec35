"""The core every page stands on, and which knows no topic: device, paths, background
jobs, process-wide objects, the single-flight LRU memo, upload text decoding."""
