from django.contrib import admin
from django.http import JsonResponse
from django.urls import path


def hello(request):
    return JsonResponse({"framework": "django", "path": request.path, "method": request.method})


urlpatterns = [
    path("admin/", admin.site.urls),
    path("hello/", hello),
]
