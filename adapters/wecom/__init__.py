"""WeCom (企业微信) self-built app adapter, split by job:

- ``crypto``  — WXBizMsgCrypt via wechatpy (constant-time signature check, one error for any bad payload);
- ``inbound`` — callback XML (defusedxml, no DTDs) → typed models → neutral events;
- ``render``  — neutral Card → ``template_card`` (text_notice / button_interaction / vote / multiple);
- ``client``  — the only outbound path (aiohttp, shared access token, errcodes → outbox error types);
- ``adapter`` — ``WeComAdapter``, wiring the four together for the dispatcher and the outbox.

Setting up the app in the WeCom admin console: API receive URL ``<server.public_url>/callbacks/wecom`` with
the Token and EncodingAESKey from ``[wecom]``; the server's egress IP in the app's trusted IPs; the app's
visible range covering everyone perfloop should reach (its contacts are what ``list_org`` reads). WeCom
callbacks carry a timestamp; perfloop refuses ones more than 5 minutes away from its clock, so keep NTP on.
"""
