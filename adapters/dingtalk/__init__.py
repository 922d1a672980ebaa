"""DingTalk (钉钉): robot chat, interactive cards, event subscription, Stream mode, org sync."""
