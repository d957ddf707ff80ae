"""Runtime code of rightsizing-constructs: the Lambda handlers and the pure decision core.

This package is deployed as the Lambda asset (the directory above it is the asset root) and is
imported by the ``plan`` command from the same files. It must never import aws_cdk: it runs in
the Lambda Python runtime with only boto3 available.
"""
