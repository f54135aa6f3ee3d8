"""Local mode: the synthesized workflow, the real handlers and the real inference code, offline.

``endpoint`` serves a model archive over the SageMaker runtime protocol with data capture;
``lambda_runtime`` dispatches moto's Lambda invocations to the handler files; ``template``
reads the synthesized cloud assembly (``cloud_assembly`` resolves its intrinsics) into the
``spec`` of the workflow; ``workflow`` wires them into moto's Step Functions interpreter;
``python -m emulator --help`` lists the commands, each in ``commands``.
"""
