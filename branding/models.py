"""A tenant's brand: what its join pages look like. The dashboard's branding editor (issue 6)
grows on this; join pages only read it through `branding.selectors`."""

from __future__ import annotations

from django.core.validators import RegexValidator
from django.db import models

from accounts.models import Tenant

HEX_COLOUR = RegexValidator(r"^#[0-9a-fA-F]{6}$", "Use a colour like #2f5bea")


class Brand(models.Model):
    tenant = models.OneToOneField(Tenant, on_delete=models.CASCADE, related_name="brand")
    product_name = models.CharField(max_length=60, blank=True)
    logo_url = models.URLField(max_length=500, blank=True)
    primary_color = models.CharField(max_length=7, blank=True, validators=[HEX_COLOUR])
    accent_color = models.CharField(max_length=7, blank=True, validators=[HEX_COLOUR])
    # White label: the pages never name Parley.
    white_label = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Brand of {self.tenant}"


# --- Dashboard branding (issue 6): an uploaded logo and a custom domain ----------------------


class BrandLogo(models.Model):
    """A logo uploaded in the dashboard, kept in the database (a few hundred KB at most) so
    every web process serves it without shared file storage. Served at /brand/logo/<sha>."""

    tenant = models.OneToOneField(Tenant, on_delete=models.CASCADE, related_name="brand_logo")
    data = models.BinaryField()
    content_type = models.CharField(max_length=32)
    sha = models.CharField(max_length=64, db_index=True, help_text="SHA-256 of the bytes")
    uploaded_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Logo of {self.tenant}"


def new_verification_token() -> str:
    import secrets

    return secrets.token_hex(16)


class CustomDomain(models.Model):
    """A host name a tenant's join pages answer on, once a DNS TXT record proves the tenant
    controls it: `_parley-challenge.<domain>` TXT `parley-verification=<token>`."""

    tenant = models.OneToOneField(Tenant, on_delete=models.CASCADE, related_name="custom_domain")
    domain = models.CharField(max_length=253)
    token = models.CharField(max_length=64, default=new_verification_token)
    created_at = models.DateTimeField(auto_now_add=True)
    verified_at = models.DateTimeField(null=True, blank=True)
    checked_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=200, blank=True)

    class Meta:
        constraints = [
            # Anyone may claim a name; only one tenant can have proved it.
            models.UniqueConstraint(
                fields=["domain"],
                condition=models.Q(verified_at__isnull=False),
                name="unique_verified_domain",
            ),
        ]
        indexes = [models.Index(fields=["domain"])]

    def __str__(self) -> str:
        return self.domain
