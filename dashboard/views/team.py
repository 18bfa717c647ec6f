"""API keys, members and invitations, workspace settings and switching."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from accounts import services as account_services
from accounts import signing_keys
from accounts.models import ApiKey, Invitation, Membership, SigningKey

from ..forms import (
    ROLE_CHOICES,
    ApiKeyForm,
    InviteForm,
    NewWorkspaceForm,
    RoleForm,
    WorkspaceForm,
)
from .base import (
    SESSION_TENANT,
    DashRequest,
    base_url,
    confirm_page,
    confirmed,
    dashboard_view,
    forbid,
)

Role = Membership.Role


def _form_error(form, exc: account_services.AccountError) -> None:  # type: ignore[no-untyped-def]
    form.add_error(exc.field if exc.field in form.fields else None, exc.message)


# --- API keys -----------------------------------------------------------------------------------


def _keys_page(  # type: ignore[no-untyped-def]
    request: DashRequest,
    form: ApiKeyForm,
    *,
    issued=None,
    status: int = 200,
    signing_form: ApiKeyForm | None = None,
    issued_signing: signing_keys.IssuedSigningKey | None = None,
):
    keys = list(ApiKey.objects.filter(tenant=request.dash.tenant).order_by("-created_at"))
    pairs = list(SigningKey.objects.filter(tenant=request.dash.tenant).order_by("-created_at"))
    response = render(
        request,
        "dashboard/api_keys.html",
        {
            "keys": keys,
            "form": form,
            "issued": issued,
            "signing_keys": pairs,
            "signing_form": signing_form or ApiKeyForm(prefix="signing"),
            "issued_signing": issued_signing,
        },
        status=status,
    )
    if issued is not None or issued_signing is not None:
        response["Cache-Control"] = "no-store"  # the page holds the secret
    return response


@dashboard_view(write=Role.ADMIN, nav="keys")
def api_keys(request: DashRequest) -> HttpResponse:
    """List keys; POST creates one and shows its secret on this response only."""
    if request.method == "POST":
        form = ApiKeyForm(request.POST)
        if form.is_valid():
            try:
                issued = account_services.issue_api_key(
                    actor=request.dash.membership, name=form.cleaned_data["name"]
                )
            except account_services.NotAllowed as exc:
                raise forbid(exc) from None
            except account_services.AccountError as exc:
                _form_error(form, exc)
            else:
                return _keys_page(request, ApiKeyForm(), issued=issued)
        return _keys_page(request, form, status=400)
    return _keys_page(request, ApiKeyForm())


def _key(request: DashRequest, prefix: str) -> ApiKey:
    key = ApiKey.objects.filter(tenant=request.dash.tenant, prefix=prefix).first()
    if key is None:
        raise Http404("No such key")
    return key


@require_POST
@dashboard_view(write=Role.ADMIN)
def api_key_revoke(request: DashRequest, prefix: str) -> HttpResponse:
    key = _key(request, prefix)
    if not confirmed(request):
        return confirm_page(
            request,
            title=f"Revoke the key “{key.name}”?",
            message="Requests with this key fail at once. This cannot be undone.",
            action_label="Revoke the key",
            cancel_url=reverse("dash:api-keys"),
        )
    account_services.revoke_key(actor=request.dash.membership, api_key=key)
    messages.success(request, f"Key “{key.name}” revoked.")
    return redirect("dash:api-keys")


@require_POST
@dashboard_view(write=Role.ADMIN)
def api_key_rename(request: DashRequest, prefix: str) -> HttpResponse:
    key = _key(request, prefix)
    try:
        account_services.rename_api_key(
            actor=request.dash.membership, api_key=key, name=request.POST.get("name", "")
        )
    except account_services.AccountError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Key renamed.")
    return redirect("dash:api-keys")


# --- VideoSDK-style signing keys (the /v2 API's JWTs) -----------------------------------------


@require_POST
@dashboard_view(write=Role.ADMIN, nav="keys")
def signing_key_create(request: DashRequest) -> HttpResponse:
    """Create a key pair; its secret is shown on this response only."""
    form = ApiKeyForm(request.POST, prefix="signing")
    if form.is_valid():
        try:
            issued = signing_keys.issue_signing_key(
                actor=request.dash.membership, name=form.cleaned_data["name"]
            )
        except account_services.NotAllowed as exc:
            raise forbid(exc) from None
        except account_services.AccountError as exc:
            _form_error(form, exc)
        else:
            return _keys_page(request, ApiKeyForm(), issued_signing=issued)
    return _keys_page(request, ApiKeyForm(), signing_form=form, status=400)


@require_POST
@dashboard_view(write=Role.ADMIN)
def signing_key_revoke(request: DashRequest, key_id: str) -> HttpResponse:
    key = SigningKey.objects.filter(tenant=request.dash.tenant, key_id=key_id).first()
    if key is None:
        raise Http404("No such key")
    if not confirmed(request):
        return confirm_page(
            request,
            title=f"Revoke the signing key “{key.name}”?",
            message="Tokens signed with it fail at once. This cannot be undone.",
            action_label="Revoke the key",
            cancel_url=reverse("dash:api-keys"),
        )
    signing_keys.revoke_signing_key(actor=request.dash.membership, key=key)
    messages.success(request, f"Signing key “{key.name}” revoked.")
    return redirect("dash:api-keys")


# --- members and invitations ----------------------------------------------------------------------


def _members_page(request: DashRequest, form: InviteForm, status: int = 200) -> HttpResponse:
    tenant = request.dash.tenant
    members = list(Membership.objects.filter(tenant=tenant).select_related("user").order_by("pk"))
    invitations = list(
        Invitation.objects.pending(timezone.now())
        .filter(tenant=tenant)
        .select_related("invited_by")
        .order_by("-created_at")
    )
    return render(
        request,
        "dashboard/members.html",
        {
            "members": members,
            "invitations": invitations,
            "form": form,
            "role_form": RoleForm(),
            "roles": [r for r, _ in ROLE_CHOICES],
        },
        status=status,
    )


@dashboard_view(write=Role.ADMIN, nav="members")
def members(request: DashRequest) -> HttpResponse:
    """Members and pending invitations; POST invites an email."""
    if request.method == "POST":
        form = InviteForm(request.POST)
        if form.is_valid():
            try:
                issued = account_services.invite_member(
                    actor=request.dash.membership,
                    tenant=request.dash.tenant,
                    email=form.cleaned_data["email"],
                    role=form.cleaned_data["role"],
                    base_url=base_url(request),
                )
            except account_services.NotAllowed as exc:
                raise forbid(exc) from None
            except account_services.AccountError as exc:
                _form_error(form, exc)
            else:
                messages.success(request, f"Invitation sent to {issued.invitation.email}.")
                return redirect("dash:members")
        return _members_page(request, form, status=400)
    return _members_page(request, InviteForm())


def _membership(request: DashRequest, member_id: int) -> Membership:
    membership = (
        Membership.objects.filter(tenant=request.dash.tenant, pk=member_id)
        .select_related("user")
        .first()
    )
    if membership is None:
        raise Http404("No such member")
    return membership


@require_POST
@dashboard_view(write=Role.ADMIN)
def member_role(request: DashRequest, member_id: int) -> HttpResponse:
    membership = _membership(request, member_id)
    try:
        account_services.change_role(
            actor=request.dash.membership, membership=membership, role=request.POST.get("role", "")
        )
    except account_services.NotAllowed as exc:
        raise forbid(exc) from None
    except account_services.AccountError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"{membership.user.email} is now {request.POST['role']}.")
    return redirect("dash:members")


@require_POST
@dashboard_view(write=Role.VIEWER)  # anyone may leave; removing others is checked below
def member_remove(request: DashRequest, member_id: int) -> HttpResponse:
    membership = _membership(request, member_id)
    leaving = membership.pk == request.dash.membership.pk
    if not leaving and not request.dash.can(Role.ADMIN):
        raise forbid(account_services.NotAllowed("Your role cannot remove members"))
    if not confirmed(request):
        return confirm_page(
            request,
            title="Leave this workspace?" if leaving else f"Remove {membership.user.email}?",
            message="Access to its rooms, keys and settings ends at once.",
            action_label="Leave" if leaving else "Remove",
            cancel_url=reverse("dash:members"),
        )
    try:
        account_services.remove_member(actor=request.dash.membership, membership=membership)
    except account_services.NotAllowed as exc:
        raise forbid(exc) from None
    except account_services.AccountError as exc:
        messages.error(request, exc.message)
        return redirect("dash:members")
    if leaving:
        request.session.pop(SESSION_TENANT, None)
        messages.success(request, f"You left {request.dash.tenant.name}.")
        return redirect("dashboard")
    messages.success(request, f"{membership.user.email} was removed.")
    return redirect("dash:members")


@require_POST
@dashboard_view(write=Role.ADMIN)
def invitation_revoke(request: DashRequest, public_id: str) -> HttpResponse:
    invitation = Invitation.objects.filter(tenant=request.dash.tenant, public_id=public_id).first()
    if invitation is None:
        raise Http404("No such invitation")
    if not confirmed(request):
        return confirm_page(
            request,
            title=f"Revoke the invitation of {invitation.email}?",
            message="The link in their email stops working.",
            action_label="Revoke",
            cancel_url=reverse("dash:members"),
        )
    account_services.revoke_invitation(actor=request.dash.membership, invitation=invitation)
    messages.success(request, f"Invitation of {invitation.email} revoked.")
    return redirect("dash:members")


def invitation_accept(request: DashRequest, token: str) -> HttpResponse:
    """The link of an invitation email. Signed out: sign in (or up) first, then back here."""
    from django.contrib.auth.views import redirect_to_login

    invitation = account_services.find_invitation(token)
    if invitation is None:
        return render(request, "dashboard/invitation.html", {"invalid": True}, status=404)
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    if request.method == "POST":
        try:
            membership = account_services.accept_invitation(token=token, user=request.user)
        except account_services.AccountError as exc:
            return render(
                request,
                "dashboard/invitation.html",
                {"invitation": invitation, "error": exc.message},
                status=403,
            )
        request.session[SESSION_TENANT] = invitation.tenant.public_id
        messages.success(request, f"Welcome to {invitation.tenant.name}, as {membership.role}.")
        return redirect("dashboard")
    return render(request, "dashboard/invitation.html", {"invitation": invitation})


# --- workspace -------------------------------------------------------------------------------


@require_POST
@dashboard_view(write=Role.VIEWER)
def switch(request: DashRequest) -> HttpResponse:
    """Make another of the user's tenants the current one; an unknown one is 404."""
    try:
        membership = account_services.switch_tenant(
            user=request.user, tenant_public_id=request.POST.get("tenant", "")
        )
    except account_services.AccountError:
        raise Http404("No such workspace") from None
    request.session[SESSION_TENANT] = membership.tenant.public_id
    messages.success(request, f"Switched to {membership.tenant.name}.")
    return redirect("dashboard")


@dashboard_view(write=Role.ADMIN, nav="settings")
def workspace(request: DashRequest) -> HttpResponse:
    tenant = request.dash.tenant
    if request.method == "POST":
        form = WorkspaceForm(request.POST)
        if form.is_valid():
            try:
                account_services.update_tenant(
                    actor=request.dash.membership,
                    tenant=tenant,
                    name=form.cleaned_data["name"],
                    timezone_name=form.cleaned_data["timezone"],
                )
            except account_services.NotAllowed as exc:
                raise forbid(exc) from None
            except account_services.AccountError as exc:
                _form_error(form, exc)
            else:
                messages.success(request, "Workspace settings saved.")
                return redirect("dash:settings")
        status = 400
    else:
        form = WorkspaceForm(initial={"name": tenant.name, "timezone": tenant.timezone})
        status = 200
    return render(
        request,
        "dashboard/workspace.html",
        {"form": form, "new_form": NewWorkspaceForm()},
        status=status,
    )


def _create_workspace(request: DashRequest, template: str) -> HttpResponse:
    form = NewWorkspaceForm(request.POST)
    if form.is_valid():
        try:
            tenant = account_services.create_workspace(
                user=request.user, name=form.cleaned_data["name"]
            )
        except account_services.AccountError as exc:
            _form_error(form, exc)
        else:
            request.session[SESSION_TENANT] = tenant.public_id
            messages.success(request, f"Workspace “{tenant.name}” created.")
            return redirect("dashboard")
    return render(request, template, {"new_form": form, "form": None}, status=400)


@require_POST
@dashboard_view(write=Role.VIEWER)
def workspace_create(request: DashRequest) -> HttpResponse:
    """Any signed-in user may start another workspace, which they own."""
    return _create_workspace(request, "dashboard/welcome.html")


def welcome(request: DashRequest) -> HttpResponse:
    """A signed-in user with no workspace (they left, or were removed) starts one here."""
    from django.contrib.auth.views import redirect_to_login

    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    if request.method == "POST":
        return _create_workspace(request, "dashboard/welcome.html")
    return render(request, "dashboard/welcome.html", {"new_form": NewWorkspaceForm()})


@require_GET
@dashboard_view(nav="usage")
def plan_usage(request: DashRequest) -> HttpResponse:
    from accounts.models import Plan

    from .. import usage

    tenant = request.dash.tenant
    days = usage.daily_minutes(tenant, days=30)
    peak = max((d.minutes for d in days), default=0)
    return render(
        request,
        "dashboard/usage.html",
        {
            "meters": usage.plan_meters(tenant),
            "days": days,
            "chart": _chart(days, peak),
            "total_minutes": f"{sum(d.minutes for d in days):,}",
            "plans": list(Plan.objects.all()),
        },
    )


def _chart(days, peak: int) -> dict:  # type: ignore[no-untyped-def]
    """Bar geometry for the inline SVG chart (server-drawn: no chart library)."""
    width, height, gap = 720, 180, 4
    bar = (width - gap * (len(days) - 1)) / max(len(days), 1)
    scale = height / peak if peak else 0
    bars = []
    for i, day in enumerate(days):
        h = max(round(day.minutes * scale, 1), 1 if day.minutes else 0)
        bars.append(
            {
                "x": round(i * (bar + gap), 1),
                "y": round(height - h, 1),
                "w": round(bar, 1),
                "h": h,
                "day": day.day,
                "minutes": day.minutes,
                # Weekly date labels; the last one ends at the chart's right edge.
                "label": i == 0 or i == len(days) - 1 or (len(days) - 1 - i) % 7 == 0,
                "label_x": width if i == len(days) - 1 else round(i * (bar + gap), 1),
                "anchor": "end" if i == len(days) - 1 else "start",
            }
        )
    return {"width": width, "height": height, "bars": bars, "peak": peak}
