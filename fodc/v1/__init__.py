"""Wire contract (generated protobuf/gRPC modules); see proto/fodc/v1/fodc.proto."""
