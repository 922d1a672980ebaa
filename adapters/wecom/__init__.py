"""WeCom (企业微信) self-built app adapter: crypto, inbound parsing, card rendering and the API client."""
