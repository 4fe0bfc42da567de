"""On-prem cost settings (`cost`): each GPU model's hourly cost, or its purchase price amortised over
years, and the electricity price, for the whole fleet, a site (a list of hosts) or one host.

`prices(cost)` resolves them into what the rules record (llmobs.rules.prices): fleet prices per GPU
model, and per host what its site and its own entry change (the host's entry wins over its site's).
GPU models are named as in src/llmobs/catalog/gpus.yaml; llmobs.settings checks the names.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import Field, model_validator

from llmobs.types import LabelValue, Strict

HOURS_PER_YEAR = 24 * 365


class GpuPrice(Strict):
    """What one GPU of a model costs per hour: `hour_usd`, or `purchase_usd` over `amortisation_years`."""

    hour_usd: float | None = Field(None, gt=0, description="cost of one GPU for one hour (rent, or all-in)")
    purchase_usd: float | None = Field(None, gt=0, description="purchase price of one GPU (its share of a server)")
    amortisation_years: float | None = Field(None, gt=0, le=15, description="years the purchase is spread over")

    @model_validator(mode="after")
    def _one_price(self) -> GpuPrice:
        if (self.hour_usd is None) == (self.purchase_usd is None):
            raise ValueError("give either hour_usd, or purchase_usd with amortisation_years")
        if self.purchase_usd is not None and self.amortisation_years is None:
            raise ValueError("purchase_usd needs amortisation_years (e.g. 4)")
        if self.hour_usd is not None and self.amortisation_years is not None:
            raise ValueError("amortisation_years goes with purchase_usd, not hour_usd")
        return self

    @property
    def hourly(self) -> float:
        if self.hour_usd is not None:
            return self.hour_usd
        assert self.purchase_usd is not None and self.amortisation_years is not None
        return self.purchase_usd / (self.amortisation_years * HOURS_PER_YEAR)


class PriceOverride(Strict):
    """What a host's (or site's) prices change: the electricity price and GPU models' prices."""

    electricity_kwh_usd: float | None = Field(None, gt=0, description="price of one kWh")
    gpus: dict[str, GpuPrice] = Field(default_factory=dict, description="per GPU model (catalog/gpus.yaml name)")


class SitePrices(PriceOverride):
    hosts: tuple[LabelValue, ...] = Field(min_length=1, description="the hosts of the site (inventory names)")


class Cost(Strict):
    gpu_hour_usd: float | None = Field(
        None, gt=0, description="cost of one GPU for one hour for every GPU model without its own price")
    electricity_kwh_usd: float | None = Field(None, gt=0, description="price of one kWh (GPU energy is added)")
    gpus: dict[str, GpuPrice] = Field(default_factory=dict, description="per GPU model (catalog/gpus.yaml name)")
    sites: dict[LabelValue, SitePrices] = Field(default_factory=dict, description="site: {hosts, prices}")
    hosts: dict[LabelValue, PriceOverride] = Field(default_factory=dict, description="host: prices")

    @property
    def priced(self) -> bool:
        """Whether any GPU has a price (the cost panels and rules have something to show)."""
        return self.gpu_hour_usd is not None or bool(self.gpus) or any(
            entry.gpus for entry in (*self.sites.values(), *self.hosts.values()))

    def site_of(self) -> dict[str, list[str]]:
        """host: the sites that list it (one, once the settings are valid)."""
        found: dict[str, list[str]] = {}
        for site, prices in self.sites.items():
            for host in prices.hosts:
                found.setdefault(host, []).append(site)
        return found


@dataclass(frozen=True)
class HostPrices:
    electricity_kwh_usd: float | None
    gpu_hour_usd: dict[str, float] = field(default_factory=dict)  # GPU model: hourly


@dataclass(frozen=True)
class Prices:
    default_gpu_hour_usd: float | None
    electricity_kwh_usd: float | None
    gpu_hour_usd: dict[str, float]  # GPU model: hourly
    hosts: dict[str, HostPrices]  # only what a site or host entry changes


def prices(cost: Cost) -> Prices:
    """The fleet's prices, and each host's where its site or its own entry changes them."""
    hosts: dict[str, HostPrices] = {}
    for host in sorted({*cost.site_of(), *cost.hosts}):
        entries = [cost.sites[site] for site in cost.site_of().get(host, ())[:1]] + (
            [cost.hosts[host]] if host in cost.hosts else [])
        gpus = {model: price.hourly for entry in entries for model, price in entry.gpus.items()}
        electricity = next((e.electricity_kwh_usd for e in reversed(entries) if e.electricity_kwh_usd), None)
        hosts[host] = HostPrices(electricity, dict(sorted(gpus.items())))
    return Prices(cost.gpu_hour_usd, cost.electricity_kwh_usd,
                  {model: price.hourly for model, price in sorted(cost.gpus.items())}, hosts)
