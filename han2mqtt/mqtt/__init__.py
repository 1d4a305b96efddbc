"""The MQTT side: topics and discovery payloads (pure), and the paho-mqtt publisher."""
