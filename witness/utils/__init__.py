"""Small helpers: the HTTP client, URL path quoting and secret redaction."""
