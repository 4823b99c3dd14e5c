"""Portal pages beyond plain admin changelists: show-once reveals and version transitions."""

from django.contrib import admin
from django.shortcuts import render
from django.utils.cache import add_never_cache_headers, patch_cache_control


def render_admin(request, template, context, *, title, status=200, no_store=True):
    """Render inside the admin's frame (header, breadcrumbs, user menu)."""
    response = render(
        request,
        template,
        {**admin.site.each_context(request), "title": title, **context},
        status=status,
    )
    if no_store:
        # Pages about secrets are never kept by the browser or any cache in between.
        add_never_cache_headers(response)
        patch_cache_control(response, no_store=True, private=True)
    return response
