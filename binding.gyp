{
  "targets": [
    {
      "target_name": "age_payload",
      "sources": ["native/age_payload.c", "native/range_digest.c"],
      "cflags": ["-O2"]
    }
  ]
}
