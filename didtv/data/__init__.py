"""Training and validation data: real HDR light -> display-referred HDR clips -> degraded SDR."""
