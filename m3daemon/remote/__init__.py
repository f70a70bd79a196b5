"""Remote access: the WebDAV client, listings, transfers, error classification and retries."""
