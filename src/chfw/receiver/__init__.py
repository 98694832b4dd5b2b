"""The supplier side: receive signed DUIS alerts, keep the back office of CH firmware.

- :mod:`chfw.receiver.app` -- ``create_receiver_app(config, engine)``, the HTTP endpoint
  the DSP posts to;
- :mod:`chfw.receiver.pipeline` -- ``ReceiverConfig`` and ``AlertReceiver``, the same
  checks without HTTP (size, signature, DUIS version, schema, record);
- :mod:`chfw.receiver.validation` -- ``AlertSchemas``: which schema checks which alert code;
- :mod:`chfw.receiver.writer` -- group commit: one thread records many alerts per transaction;
- :mod:`chfw.receiver.facts` -- what a verified alert says;
- :mod:`chfw.receiver.recording` -- recording alerts and refusals, a batch at a time;
- :mod:`chfw.receiver.backoffice` -- what was received: alerts, hubs, rejections;
- :mod:`chfw.receiver.schema` -- the ``bo_*`` tables;
- pilots, cohorts, HAN readiness and the N999 lookups: their own modules.

Nothing is imported here, so that the migrations (which import the tables) do
not pull in the web framework.
"""
