"""Branding: the product name, colours (with a contrast check), logo, white label, and the
custom domain with its DNS TXT verification."""

from __future__ import annotations

from django.contrib import messages
from django.db import transaction
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from accounts.models import Membership
from accounts.services import AccountError, NotAllowed
from branding import services as branding_services
from branding.dashboard_selectors import challenge_name, challenge_value
from branding.models import Brand, BrandLogo, CustomDomain
from branding.selectors import DEFAULT_ACCENT, DEFAULT_PRIMARY

from ..forms import BrandForm, DomainForm
from .base import DashRequest, base_url, confirm_page, confirmed, dashboard_view, forbid

Role = Membership.Role


def _page(
    request: DashRequest, form: BrandForm, domain_form: DomainForm, status: int = 200
) -> HttpResponse:
    tenant = request.dash.tenant
    brand = Brand.objects.filter(tenant=tenant).first()
    claim = CustomDomain.objects.filter(tenant=tenant).first()
    uploaded = BrandLogo.objects.filter(tenant=tenant).values_list("sha", flat=True).first()
    primary = (brand.primary_color if brand else "") or DEFAULT_PRIMARY
    accent = (brand.accent_color if brand else "") or DEFAULT_ACCENT
    return render(
        request,
        "dashboard/branding.html",
        {
            "form": form,
            "domain_form": domain_form,
            "brand": brand,
            "claim": claim,
            "uploaded": uploaded,
            "record_name": challenge_name(claim.domain) if claim else "",
            "record_value": challenge_value(claim.token) if claim else "",
            "preview": {"primary": primary, "accent": accent},
            "contrast": {
                "primary": round(branding_services.contrast(primary, "#ffffff"), 1),
                "accent": round(branding_services.contrast(accent, "#ffffff"), 1),
                "min_primary": branding_services.MIN_PRIMARY_CONTRAST,
                "min_accent": branding_services.MIN_ACCENT_CONTRAST,
            },
        },
        status=status,
    )


def _initial(request: DashRequest) -> dict:
    brand = Brand.objects.filter(tenant=request.dash.tenant).first()
    if brand is None:
        return {"primary_color": DEFAULT_PRIMARY, "accent_color": DEFAULT_ACCENT}
    uploaded = "/brand/logo/" in brand.logo_url
    return {
        "product_name": brand.product_name,
        "primary_color": brand.primary_color or DEFAULT_PRIMARY,
        "accent_color": brand.accent_color or DEFAULT_ACCENT,
        "white_label": brand.white_label,
        "logo_url": "" if uploaded else brand.logo_url,
    }


@dashboard_view(write=Role.ADMIN, nav="branding")
def branding(request: DashRequest) -> HttpResponse:
    if request.method != "POST":
        return _page(request, BrandForm(initial=_initial(request)), DomainForm())
    form = BrandForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            _save(request, form.cleaned_data)
        except NotAllowed as exc:
            raise forbid(exc) from None
        except AccountError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            messages.success(request, "Branding saved.")
            return redirect("dash:branding")
    return _page(request, form, DomainForm(), status=400)


@transaction.atomic
def _save(request: DashRequest, data: dict) -> None:
    """The brand and an uploaded logo: both, or neither."""
    actor, tenant = request.dash.membership, request.dash.tenant
    upload = data.get("logo")
    # A new URL replaces an uploaded logo; an empty URL field keeps the upload.
    had_upload = BrandLogo.objects.filter(tenant=tenant).exists()
    logo_url = data["logo_url"] if (data["logo_url"] or not had_upload) else None
    branding_services.update_brand(
        actor=actor,
        tenant=tenant,
        data=branding_services.BrandInput(
            product_name=data["product_name"],
            primary_color=data["primary_color"],
            accent_color=data["accent_color"],
            white_label=data["white_label"],
            logo_url=logo_url,
        ),
    )
    if upload is not None:
        if upload.size > branding_services.MAX_LOGO_BYTES:
            raise branding_services.BrandingError("The logo must be at most 512 KB", field="logo")
        branding_services.upload_logo(
            actor=actor, tenant=tenant, data=upload.read(), base_url=base_url(request)
        )


@require_POST
@dashboard_view(write=Role.ADMIN)
def logo_remove(request: DashRequest) -> HttpResponse:
    if not confirmed(request):
        return confirm_page(
            request,
            title="Remove the logo?",
            message="Join pages show the product name instead.",
            action_label="Remove the logo",
            cancel_url=reverse("dash:branding"),
        )
    try:
        branding_services.remove_logo(actor=request.dash.membership, tenant=request.dash.tenant)
    except NotAllowed as exc:
        raise forbid(exc) from None
    messages.success(request, "Logo removed.")
    return redirect("dash:branding")


@require_POST
@dashboard_view(write=Role.ADMIN)
def domain_add(request: DashRequest) -> HttpResponse:
    domain_form = DomainForm(request.POST)
    if domain_form.is_valid():
        try:
            claim = branding_services.set_domain(
                actor=request.dash.membership,
                tenant=request.dash.tenant,
                domain=domain_form.cleaned_data["domain"],
            )
        except NotAllowed as exc:
            raise forbid(exc) from None
        except AccountError as exc:
            domain_form.add_error("domain", exc.message)
        else:
            messages.success(
                request, f"Now add the TXT record below to {claim.domain}'s DNS, then verify."
            )
            return redirect(reverse("dash:branding") + "#domain")
    return _page(request, BrandForm(initial=_initial(request)), domain_form, status=400)


@require_POST
@dashboard_view(write=Role.ADMIN)
def domain_verify(request: DashRequest) -> HttpResponse:
    try:
        result = branding_services.verify_domain(
            actor=request.dash.membership, tenant=request.dash.tenant
        )
    except NotAllowed as exc:
        raise forbid(exc) from None
    except AccountError as exc:
        messages.error(request, exc.message)
    else:
        if result.verified:
            messages.success(request, f"{result.domain.domain} is verified: join links use it.")
        else:
            messages.error(request, result.message)
    return redirect(reverse("dash:branding") + "#domain")


@require_POST
@dashboard_view(write=Role.ADMIN)
def domain_remove(request: DashRequest) -> HttpResponse:
    if not confirmed(request):
        return confirm_page(
            request,
            title="Remove the custom domain?",
            message="Join links go back to this service's own address; links with the "
            "domain stop working.",
            action_label="Remove the domain",
            cancel_url=reverse("dash:branding"),
        )
    try:
        branding_services.remove_domain(actor=request.dash.membership, tenant=request.dash.tenant)
    except NotAllowed as exc:
        raise forbid(exc) from None
    messages.success(request, "Custom domain removed.")
    return redirect("dash:branding")
