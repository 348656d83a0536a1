{
  "targets": [
    {
      "target_name": "age_payload",
      "sources": ["native/age_payload.c"],
      "cflags": ["-O2"]
    }
  ]
}
