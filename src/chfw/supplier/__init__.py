"""The supplier product: receive signed DUIS alerts, keep the back office of CH firmware.

Never imports :mod:`chfw.dsp` (``.importlinter``).

- :mod:`chfw.supplier.app` -- ``create_receiver_app(config, engine)``, the HTTP endpoint
  the DSP posts to;
- :mod:`chfw.supplier.pipeline` -- ``ReceiverConfig`` and ``AlertReceiver``, the same
  checks without HTTP (size, signature, DUIS version, schema, record);
- :mod:`chfw.supplier.validation` -- ``AlertSchemas``: which schema checks which alert code;
- :mod:`chfw.supplier.writer` -- group commit: one thread records many alerts per transaction;
- :mod:`chfw.supplier.facts` -- what a verified alert says;
- :mod:`chfw.supplier.recording` -- recording alerts and refusals, a batch at a time;
- :mod:`chfw.supplier.backoffice` -- what was received: alerts, hubs, rejections;
- :mod:`chfw.supplier.schema` -- the ``bo_*`` tables, on the back office's own metadata,
  migrated by its own chain (:mod:`chfw.supplier.migrate`);
- :mod:`chfw.supplier.dashboard` -- the supplier's dashboard (``templates/``);
- pilots, cohorts, HAN readiness and the N999 lookups: their own modules.

Nothing is imported here, so that the migrations (which import the tables) do
not pull in the web framework.
"""
