"""The one Temporal client factory: API, workers, CLI and tests all connect through here."""

from __future__ import annotations

import dataclasses

from temporalio.client import Client
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from domain import search_attributes
from runtime.codec import EncryptionCodec, parse_keys
from runtime.settings import Settings


def search_attribute_flags() -> list[str]:
    """`temporal server start-dev --search-attribute` arguments that register ours at start."""
    flags: list[str] = []
    for key in search_attributes.ALL:
        kind = "Int" if key.indexed_value_type.name.endswith("INT") else "Keyword"
        flags += ["--search-attribute", f"{key.name}={kind}"]
    return flags


def data_converter(settings: Settings) -> DataConverter:
    """Pydantic models as JSON, encrypted when codec keys are configured: payloads, and failures'
    messages and stack traces too (a platform's error text often carries an address), which the
    failure converter moves into an encoded payload the codec encrypts."""
    if settings.codec_keys is None or not settings.codec_keys.get_secret_value():
        return pydantic_data_converter
    codec = EncryptionCodec(parse_keys(settings.codec_keys.get_secret_value()))
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=codec,
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


def metrics_runtime(port: int, host: str = "127.0.0.1") -> Runtime:
    """A Temporal runtime whose SDK metrics (and the journeys' own) Prometheus can scrape on `port`."""
    return Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=f"{host}:{port}")))


async def connect(
    settings: Settings, *, address: str | None = None, lazy: bool = False, runtime: Runtime | None = None
) -> Client:
    return await Client.connect(
        address or settings.temporal_address,
        runtime=runtime,
        lazy=lazy,
        namespace=settings.temporal_namespace,
        data_converter=data_converter(settings),
        # Spans for start, signal, workflow and activity, with the context carried in headers.
        interceptors=[TracingInterceptor()],
        api_key=settings.temporal_api_key.get_secret_value() if settings.temporal_api_key else None,
        tls=settings.temporal_tls,
    )


async def register_search_attributes(client: Client) -> list[str]:
    """Adds any of ours the namespace lacks (a cluster or Temporal Cloud; `dev` registers at start)."""
    from temporalio.api.enums.v1 import IndexedValueType
    from temporalio.api.operatorservice.v1 import (
        AddSearchAttributesRequest,
        ListSearchAttributesRequest,
    )
    from temporalio.service import RPCError, RPCStatusCode

    try:
        listed = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=client.namespace)
        )
        present = set(listed.custom_attributes)
    except RPCError as exc:
        # The time-skipping test server cannot list, but can add.
        if exc.status != RPCStatusCode.UNIMPLEMENTED:
            raise
        present = set()
    missing = {
        key.name: IndexedValueType.ValueType(key.indexed_value_type.value)
        for key in search_attributes.ALL
        if key.name not in present
    }
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=client.namespace, search_attributes=missing)
        )
    return sorted(missing)
