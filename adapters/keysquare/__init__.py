"""keysquare: the KeySession client over gRPC, and the embedded data platform."""
