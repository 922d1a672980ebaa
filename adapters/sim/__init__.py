"""The local web simulator: a phone-messenger page that talks to the bot through the same adapter interface
as WeCom, Feishu and DingTalk. Used by ``perfloop demo`` and the browser tests; never exposed unless
``sim.enabled``."""
