"""Sans-IO protocol layers: HDLC, A-XDR, COSEM types, OBIS codes, APDUs."""
